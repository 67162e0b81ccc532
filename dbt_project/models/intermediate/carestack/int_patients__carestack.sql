-- CareStack -> canonical patients: one row per (connection_id, patient id), every status.
-- Patient ids are account-wide; the home location is defaultLocationId. Status names are
-- CareStack's (unconfirmed list): Active, NonPatient, Prospect and the rest lowercased; a name
-- outside the list is lowercased, never guessed, and fails int_patients' accepted_values test.

select
    connection_id,
    cast(id as varchar) as source_patient_id,
    cast(default_location_id as varchar) as source_location_id,
    cast(guarantor_id as varchar) as source_guarantor_id,
    cast(primary_provider_id as varchar) as source_primary_provider_id,
    nullif(trim(first_name), '') as first_name,
    nullif(trim(middle_name), '') as middle_name,
    nullif(trim(last_name), '') as last_name,
    nullif(trim(preferred_name), '') as preferred_name,
    dob as birth_date,
    lower(nullif(trim(gender), '')) as gender,
    case status
        when 'Active' then 'active'
        when 'NonPatient' then 'non_patient'
        when 'Prospect' then 'prospective'
        else lower(status)
    end as patient_status,
    nullif(trim(email), '') as email,
    nullif(trim(mobile), '') as mobile_phone,
    nullif(trim(home_phone), '') as home_phone,
    nullif(trim(work_phone), '') as work_phone,
    nullif(trim(address_line1), '') as address_line1,
    nullif(trim(address_line2), '') as address_line2,
    nullif(trim(city), '') as city,
    nullif(trim(state), '') as state,
    nullif(trim(zip_code), '') as postal_code,
    -- the partner API exposes no text-message consent
    cast(null as boolean) as sms_consent,
    first_visit_date,
    -- no creation stamp on the patient record
    cast(null as date) as created_date,
    last_modified_on as source_updated_at,
    _extracted_at
from {{ ref('stg_carestack__patients') }}
