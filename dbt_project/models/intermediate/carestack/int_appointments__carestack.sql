-- CareStack -> canonical appointments: one row per (connection_id, appointment id).
--
-- Status signature: the status NAME from the practice's own /appointment-status list
-- (statusId -> Name), as-is; the crosswalk maps each name. The list is configurable, so a
-- practice's new name is flagged by the crosswalk test, never interpreted here. A statusId the
-- synced list does not have (yet) becomes 'StatusId:<id>', flagged the same way.
--
-- dateTime is the location's wall-clock time: converted to UTC with the location's zone
-- (canonical_local_to_utc), the connection's zone when the location is unknown. providerIds
-- lists the dentist first, then the hygienist (order as integrations show it, unconfirmed).
-- The partner API keeps no arrival/seat/dismiss or cancel times on the appointment.

with appointments as (

    select * from {{ ref('stg_carestack__appointments') }}

),

statuses as (

    select connection_id, id as status_id, name as status_name
    from {{ ref('stg_carestack__appointment_statuses') }}

),

locations as (

    select connection_id, id as location_id, nullif(trim(time_zone), '') as time_zone
    from {{ ref('stg_carestack__locations') }}

),

located as (

    select
        appointments.*,
        statuses.status_name,
        coalesce(locations.time_zone, appointments.source_timezone) as location_timezone
    from appointments
    left join statuses
        on appointments.connection_id = statuses.connection_id
        and appointments.status_id = statuses.status_id
    left join locations
        on appointments.connection_id = locations.connection_id
        and appointments.location_id = locations.location_id

)

select
    connection_id,
    cast(id as varchar) as source_appointment_id,
    cast(location_id as varchar) as source_location_id,
    cast(patient_id as varchar) as source_patient_id,
    cast(provider_ids[1] as varchar) as source_provider_id,
    cast(provider_ids[2] as varchar) as source_hygienist_id,
    cast(operatory_id as varchar) as source_operatory_id,
    coalesce(status_name, 'StatusId:' || status_id) as vendor_status,
    {{ canonical_local_to_utc('date_time', 'location_timezone') }} as start_at,
    {{ canonical_local_to_utc('date_time', 'location_timezone') }}
        + to_minutes(duration) as end_at,
    cast(duration as integer) as duration_minutes,
    location_timezone as timezone,
    created_on as booked_at,
    cast(null as timestamptz) as arrived_at,
    cast(null as timestamptz) as seated_at,
    cast(null as timestamptz) as dismissed_at,
    cast(null as timestamptz) as cancelled_at,
    -- not on CareStack's appointment record
    cast(null as boolean) as is_new_patient,
    cast(null as boolean) as is_hygiene,
    cast(null as varchar) as description,
    last_modified_on as source_updated_at,
    _extracted_at
from located
