-- Open Dental -> canonical patients: one row per (connection_id, pat_num), every PatStatus
-- (Deleted and Archived included: filter on patient_status).
-- Location = the patient's ClinicNum (0 = the office without clinics, or "no clinic").
-- References that are 0 in Open Dental ("none") are NULL.

select
    connection_id,
    cast(pat_num as varchar) as source_patient_id,
    cast(clinic_num as varchar) as source_location_id,
    cast(nullif(guarantor, 0) as varchar) as source_guarantor_id,
    cast(nullif(pri_prov, 0) as varchar) as source_primary_provider_id,
    nullif(trim(f_name), '') as first_name,
    nullif(trim(middle_i), '') as middle_name,
    nullif(trim(l_name), '') as last_name,
    nullif(trim(preferred), '') as preferred_name,
    birthdate as birth_date,
    case gender
        when 'Male' then 'male'
        when 'Female' then 'female'
        when 'Other' then 'other'
        when 'Unknown' then 'unknown'
    end as gender,
    case pat_status
        when 'Patient' then 'active'
        when 'NonPatient' then 'non_patient'
        when 'Inactive' then 'inactive'
        when 'Archived' then 'archived'
        when 'Deleted' then 'deleted'
        when 'Deceased' then 'deceased'
        when 'Prospective' then 'prospective'
    end as patient_status,
    nullif(trim(email), '') as email,
    nullif(trim(wireless_phone), '') as mobile_phone,
    nullif(trim(hm_phone), '') as home_phone,
    nullif(trim(wk_phone), '') as work_phone,
    nullif(trim(address), '') as address_line1,
    nullif(trim(address2), '') as address_line2,
    nullif(trim(city), '') as city,
    nullif(trim(state), '') as state,
    nullif(trim(zip), '') as postal_code,
    case txt_msg_ok when 'Yes' then true when 'No' then false end as sms_consent,
    date_first_visit as first_visit_date,
    sec_date_entry as created_date,
    {{ canonical_local_to_utc('date_t_stamp') }} as source_updated_at,
    _extracted_at
from {{ ref('stg_opendental__patients') }}
