-- One row per enquiry (online appointment request, inbound call, inbound text) with who it is:
-- the matching outcome, the group-level person and household, and whether the enquirer was
-- already a patient of the group when they got in touch. Definitions: docs/identity.md.

with traits as (
    select * from {{ ref('identity_enquiry_traits') }}
),

matches as (
    select * from {{ ref('identity_enquiry_matches') }}
),

location_timezones as (
    select org_location_id, min(timezone) as timezone
    from {{ ref('int_org_locations') }}
    where org_location_id is not null
    group by org_location_id
),

patient_history as (
    -- The day each person, and each phone number, first appears among the group's patients.
    select
        persons.person_id,
        unnest(coalesce(patients.phones, [null])) as phone_e164,
        patients.patient_since
    from {{ ref('identity_patient_traits') }} as patients
    inner join {{ ref('identity_patient_persons') }} as persons using (patient_key)
),

person_since as (
    select person_id, min(patient_since) as first_patient_date
    from patient_history
    group by person_id
),

phone_since as (
    select phone_e164, min(patient_since) as first_patient_date
    from patient_history
    where phone_e164 is not null
    group by phone_e164
),

enquiries as (
    select
        traits.*,
        cast(timezone(coalesce(location_timezones.timezone, 'UTC'), traits.occurred_at) as date)
            as occurred_local_date
    from traits
    left join location_timezones using (org_location_id)
)

select
    enquiries.enquiry_key,
    enquiries.enquiry_type,
    enquiries.channel,
    enquiries.source_system,
    enquiries.connection_id,
    enquiries.org_location_id,
    enquiries.occurred_at,
    enquiries.occurred_local_date,
    enquiries.phone_1 as phone_e164,
    enquiries.phone_rejected,
    enquiries.is_named,
    matches.match_outcome,
    matches.person_id,
    matches.patient_key,
    matches.household_id,
    matches.match_probability,
    matches.match_weight,
    matches.margin_weight,
    matches.candidate_persons,
    matches.decided_by,
    enquiries.source_patient_key,
    enquiries.source_appointment_key,
    -- New to the group: neither the linked person nor (for a call or text) anyone carrying the
    -- number had a patient record created before the day of the enquiry. A record created the
    -- same day is the enquiry's own outcome (the desk registered the caller), not prior history.
    not coalesce(
        person_since.first_patient_date < enquiries.occurred_local_date
        or (not enquiries.is_named and phone_since.first_patient_date < enquiries.occurred_local_date),
        false
    ) as is_new_contact
from enquiries
inner join matches using (enquiry_key)
left join person_since on person_since.person_id = matches.person_id
left join phone_since on phone_since.phone_e164 = enquiries.phone_1
