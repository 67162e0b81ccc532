-- Who carries each phone number among the group's patients (identity): a number exactly one
-- person carries is that person (with how many patient records the person has across the
-- group's practices); a number several persons carry (a family phone) is a household.

{{ config(materialized='ephemeral') }}

with persons as (
    select patient_key, person_id from {{ ref('identity_patient_persons') }}
),

person_records as (
    select person_id, count(*) as n_patient_records
    from persons
    group by person_id
),

record_numbers as (
    select persons.person_id, unnest(traits.phones) as phone_e164
    from {{ ref('identity_patient_traits') }} as traits
    inner join persons using (patient_key)
),

numbers as (
    select
        phone_e164,
        count(distinct person_id) as n_persons,
        case when count(distinct person_id) = 1 then min(person_id) end as person_id
    from record_numbers
    where phone_e164 is not null
    group by phone_e164
)

select numbers.*, person_records.n_patient_records as person_patient_records
from numbers
left join person_records using (person_id)
