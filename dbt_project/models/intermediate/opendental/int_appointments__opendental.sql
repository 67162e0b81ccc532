-- Open Dental -> canonical appointments: one row per (connection_id, apt_num), every AptStatus.
--
-- vendor_status is Open Dental's status signature, mapped to canonical_status by the crosswalk
-- seed (appointment_status_crosswalk). Confirmation and arrival are not AptStatus values in
-- Open Dental but separate facts on the row, so a Scheduled appointment's signature adds the
-- furthest patient-flow fact recorded, else its confirmation status (office-defined names):
--   Scheduled+Dismissed | Scheduled+Seated | Scheduled+Arrived      (DateTime* set)
--   Scheduled+Confirmation:<confirmed name>                         (e.g. Appointment Confirmed)
--   Scheduled                                                       (no confirmation status)
-- Every other AptStatus is its own signature (Complete, Broken, UnschedList, Planned, PtNote,
-- PtNoteCompleted, ASAP, None). Broken does not say cancelled or no-show: see the crosswalk.
--
-- Times are converted from office-local wall-clock time to UTC (canonical_local_to_utc).
-- The end is the start plus the Pattern's length (one character per 5 minutes).

with appointments as (

    select * from {{ ref('stg_opendental__appointments') }}

)

select
    connection_id,
    cast(apt_num as varchar) as source_appointment_id,
    cast(clinic_num as varchar) as source_location_id,
    cast(nullif(pat_num, 0) as varchar) as source_patient_id,
    cast(nullif(prov_num, 0) as varchar) as source_provider_id,
    cast(nullif(prov_hyg, 0) as varchar) as source_hygienist_id,
    cast(nullif(op, 0) as varchar) as source_operatory_id,
    case
        when apt_status <> 'Scheduled' then apt_status
        when date_time_dismissed is not null then 'Scheduled+Dismissed'
        when date_time_seated is not null then 'Scheduled+Seated'
        when date_time_arrived is not null then 'Scheduled+Arrived'
        when nullif(trim(confirmed_name), '') is not null
            then 'Scheduled+Confirmation:' || trim(confirmed_name)
        else 'Scheduled'
    end as vendor_status,
    {{ canonical_local_to_utc('apt_date_time') }} as start_at,
    {{ canonical_local_to_utc('apt_date_time') }}
        + to_minutes(5 * length(pattern)) as end_at,
    5 * length(pattern) as duration_minutes,
    source_timezone as timezone,
    {{ canonical_local_to_utc('sec_date_t_entry') }} as booked_at,
    {{ canonical_local_to_utc('date_time_arrived') }} as arrived_at,
    {{ canonical_local_to_utc('date_time_seated') }} as seated_at,
    {{ canonical_local_to_utc('date_time_dismissed') }} as dismissed_at,
    -- Open Dental keeps no break time on the appointment row (histappointment has it)
    cast(null as timestamptz) as cancelled_at,
    is_new_patient,
    is_hygiene,
    nullif(trim(proc_descript), '') as description,
    {{ canonical_local_to_utc('date_t_stamp') }} as source_updated_at,
    _extracted_at
from appointments
