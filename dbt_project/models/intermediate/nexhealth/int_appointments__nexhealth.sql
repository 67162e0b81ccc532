-- NexHealth -> canonical appointments: one row per (connection_id, appointment id).
--
-- NexHealth has no status, only flags. The signature (vendor_status) is the terminal flags that
-- are true, joined with '+', in the order unavailable, cancelled, patient_missed, checked_out;
-- if none: 'checkin_at' when checkin_at is set, else 'confirmed' when confirmed or
-- patient_confirmed, else 'unconfirmed'. Contradictory flags ('cancelled+checked_out') form a
-- signature the crosswalk lacks: flagged by its test, never resolved by precedence here.
-- Times are UTC already; the appointment carries its location's zone.

with appointments as (

    select * from {{ ref('stg_nexhealth__appointments') }}

),

locations as (

    select connection_id, id as location_id, nullif(trim(tz), '') as tz
    from {{ ref('stg_nexhealth__locations') }}

),

flagged as (

    select
        appointments.*,
        locations.tz as location_tz,
        concat_ws(
            '+',
            case when appointments.unavailable then 'unavailable' end,
            case when appointments.cancelled then 'cancelled' end,
            case when appointments.patient_missed then 'patient_missed' end,
            case when appointments.checked_out then 'checked_out' end
        ) as terminal_flags
    from appointments
    left join locations
        on appointments.connection_id = locations.connection_id
        and appointments.location_id = locations.location_id

)

select
    connection_id,
    cast(id as varchar) as source_appointment_id,
    cast(location_id as varchar) as source_location_id,
    cast(patient_id as varchar) as source_patient_id,
    cast(provider_id as varchar) as source_provider_id,
    -- one provider per NexHealth appointment
    cast(null as varchar) as source_hygienist_id,
    cast(operatory_id as varchar) as source_operatory_id,
    case
        when terminal_flags <> '' then terminal_flags
        when checkin_at is not null then 'checkin_at'
        when confirmed or patient_confirmed then 'confirmed'
        else 'unconfirmed'
    end as vendor_status,
    start_time as start_at,
    end_time as end_at,
    cast(date_diff('minute', start_time, end_time) as integer) as duration_minutes,
    coalesce(nullif(trim(timezone), ''), location_tz, source_timezone) as timezone,
    created_at as booked_at,
    checkin_at as arrived_at,
    cast(null as timestamptz) as seated_at,
    checked_out_at as dismissed_at,
    cancelled_at,
    is_new_clients_patient as is_new_patient,
    -- NexHealth keeps no hygiene flag; appointment types are the practice's own names
    cast(null as boolean) as is_hygiene,
    cast(null as varchar) as description,
    updated_at as source_updated_at,
    _extracted_at
from flagged
