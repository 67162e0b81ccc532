-- CareStack -> canonical appointment requests: one row per (connection_id, request id), the
-- practice's online booking requests. A requester who is not a patient yet names no patient
-- until the office books the request (then the request points at the appointment).
-- CareStack records a preferred DAY, not a slot: requested_start_at is NULL.

select
    connection_id,
    cast(id as varchar) as source_appointment_request_id,
    cast(location_id as varchar) as source_location_id,
    cast(patient_id as varchar) as source_patient_id,
    -- requests name no provider
    cast(null as varchar) as source_provider_id,
    cast(appointment_id as varchar) as source_appointment_id,
    status as vendor_status,
    'online booking' as channel,
    created_on as requested_at,
    cast(null as timestamptz) as requested_start_at,
    is_new_patient,
    nullif(trim(first_name), '') as first_name,
    nullif(trim(last_name), '') as last_name,
    -- as typed on the form (optional there, so often NULL)
    date_of_birth as birth_date,
    nullif(trim(email), '') as email,
    nullif(trim(phone), '') as phone,
    nullif(trim(reason), '') as reason,
    last_modified_on as source_updated_at,
    _extracted_at
from {{ ref('stg_carestack__appointment_requests') }}
