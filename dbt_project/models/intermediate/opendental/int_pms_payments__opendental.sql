-- Open Dental -> canonical PMS payments: one row per (connection_id, pay_num): patient payments
-- (Open Dental's /payments holds no insurance payments). Negative amounts are refunds;
-- PayType 0 is an income transfer (money moved between family members or providers, not
-- received). Dates are the office's local business dates, as Open Dental records them.

select
    connection_id,
    cast(pay_num as varchar) as source_pms_payment_id,
    cast(clinic_num as varchar) as source_location_id,
    cast(nullif(pat_num, 0) as varchar) as source_patient_id,
    pay_date as payment_date,
    date_entry as entry_date,
    pay_amt as amount,
    nullif(trim(pay_type_name), '') as payment_type,
    pay_type = 0 as is_income_transfer,
    cast(nullif(deposit_num, 0) as varchar) as source_deposit_id,
    {{ writeback_charge_id('pay_note') }} as writeback_charge_id,
    {{ canonical_local_to_utc('sec_date_t_edit') }} as source_updated_at,
    _extracted_at
from {{ ref('stg_opendental__payments') }}
