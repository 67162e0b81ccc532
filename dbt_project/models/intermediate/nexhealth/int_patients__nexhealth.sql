-- NexHealth -> canonical patients: one row per (connection_id, patient id), every status.
-- NexHealth keeps only `inactive` (which folds the PMS's inactive, archived, deleted and
-- deceased together) and bio.non_patient: inactive -> inactive, else non_patient, else active.
-- Home location = the first of location_ids. guarantor_id 0 ("their own guarantor", as one
-- NexHealth guide puts it) is the patient's own id. created_date is created_at's local date at
-- the home location.

with patients as (

    select * from {{ ref('stg_nexhealth__patients') }}

),

locations as (

    select connection_id, id as location_id, nullif(trim(tz), '') as tz
    from {{ ref('stg_nexhealth__locations') }}

)

select
    patients.connection_id,
    cast(patients.id as varchar) as source_patient_id,
    cast(patients.location_ids[1] as varchar) as source_location_id,
    cast(
        case when patients.guarantor_id = 0 then patients.id else patients.guarantor_id end
        as varchar
    ) as source_guarantor_id,
    cast(nullif(patients.provider_id, 0) as varchar) as source_primary_provider_id,
    nullif(trim(patients.first_name), '') as first_name,
    nullif(trim(patients.middle_name), '') as middle_name,
    nullif(trim(patients.last_name), '') as last_name,
    cast(null as varchar) as preferred_name,
    patients.bio_date_of_birth as birth_date,
    -- Male, Female, Other; NexHealth sends null for the PMS's "unknown"
    coalesce(lower(nullif(trim(patients.bio_gender), '')), 'unknown') as gender,
    case
        when patients.inactive then 'inactive'
        when patients.bio_non_patient then 'non_patient'
        else 'active'
    end as patient_status,
    nullif(trim(patients.email), '') as email,
    nullif(trim(patients.bio_cell_phone_number), '') as mobile_phone,
    nullif(trim(patients.bio_home_phone_number), '') as home_phone,
    nullif(trim(patients.bio_work_phone_number), '') as work_phone,
    nullif(trim(coalesce(patients.bio_address_line_1, patients.bio_street_address)), '')
        as address_line1,
    nullif(trim(patients.bio_address_line_2), '') as address_line2,
    nullif(trim(patients.bio_city), '') as city,
    nullif(trim(patients.bio_state), '') as state,
    nullif(trim(patients.bio_zip_code), '') as postal_code,
    -- not exposed by NexHealth
    cast(null as boolean) as sms_consent,
    cast(null as date) as first_visit_date,
    cast(timezone(coalesce(locations.tz, patients.source_timezone), patients.created_at) as date)
        as created_date,
    patients.updated_at as source_updated_at,
    patients._extracted_at
from patients
left join locations
    on patients.connection_id = locations.connection_id
    and patients.location_ids[1] = locations.location_id
