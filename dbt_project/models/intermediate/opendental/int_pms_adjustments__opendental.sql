-- Open Dental -> canonical PMS adjustments: one row per (connection_id, adj_num). The amount is
-- signed as Open Dental stores it: positive adds to the patient's balance (fees), negative
-- reduces it (discounts, write-offs).

select
    connection_id,
    cast(adj_num as varchar) as source_pms_adjustment_id,
    cast(clinic_num as varchar) as source_location_id,
    cast(nullif(pat_num, 0) as varchar) as source_patient_id,
    cast(nullif(prov_num, 0) as varchar) as source_provider_id,
    adj_date as adjustment_date,
    date_entry as entry_date,
    adj_amt as amount,
    nullif(trim(adj_type_name), '') as adjustment_type,
    {{ canonical_local_to_utc('sec_date_t_edit') }} as source_updated_at,
    _extracted_at
from {{ ref('stg_opendental__adjustments') }}
