-- Calls to summarise on the caller's patient record (an Open Dental commlog): one row per
-- inbound call a person answered, from a number exactly one person of the group carries
-- (identity_enquiries), to that person's patient record in the PMS of the location called.
-- The summary states only the call's facts (direction, outcome, length, line), never content.
-- writeback_state:
--   ready        one person, with a patient record in the called location's PMS (Open Dental)
--   no_person    the number is unknown or shared by a household
--   no_record    the person has no patient record in that PMS
--   unsupported  the PMS's API takes no commlogs (CareStack, NexHealth): nothing to write

with calls as (

    select * from {{ ref('fct_calls') }}
    where direction = 'inbound' and call_outcome = 'answered'

),

callers as (

    select enquiry_key as call_key, match_outcome, person_id
    from {{ ref('identity_enquiries') }}
    where enquiry_type = 'call'

),

locations as (

    select location_id, connection_id, vendor, location_name
    from {{ source('organisation', 'locations') }}

),

records as (

    -- The person's patient records, newest first per PMS connection.
    select
        persons.person_id,
        patients.connection_id,
        patients.source_patient_id,
        patients.patient_key,
        row_number() over (
            partition by persons.person_id, patients.connection_id
            order by patients.created_date desc nulls last, patients.patient_key
        ) as rank
    from {{ ref('identity_patient_persons') }} as persons
    inner join {{ ref('int_patients') }} as patients
        on patients.patient_key = persons.patient_key

)

select
    calls.call_key,
    calls.source_call_id,
    calls.org_location_id,
    locations.location_name,
    calls.started_at,
    calls.talk_seconds,
    callers.match_outcome as caller_match_outcome,
    callers.person_id,
    locations.connection_id as pms_connection_id,
    locations.vendor as pms_vendor,
    records.source_patient_id,
    records.patient_key,
    case
        when coalesce(callers.match_outcome, 'none') <> 'exact' then 'no_person'
        when locations.vendor is distinct from 'opendental' then 'unsupported'
        when records.patient_key is null then 'no_record'
        else 'ready'
    end as writeback_state
from calls
left join callers using (call_key)
left join locations
    on locations.location_id = calls.org_location_id
left join records
    on records.person_id = callers.person_id
    and records.connection_id = locations.connection_id
    and records.rank = 1
