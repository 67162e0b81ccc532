-- NexHealth -> canonical PMS payments: one row per (connection_id, payment id), for the PMSs
-- whose ledger NexHealth relays. NexHealth signs a payment negative (it lowers the balance) and
-- a refund positive: the canonical amount is the opposite. A payment NexHealth marks deleted
-- (deleted_at) was removed in the PMS and is left out. NexHealth has no entry date, deposit or
-- income-transfer flag, and names payment types only through /payment_types (not extracted).

select
    connection_id,
    cast(id as varchar) as source_pms_payment_id,
    cast(location_id as varchar) as source_location_id,
    cast(patient_id as varchar) as source_patient_id,
    paid_at as payment_date,
    cast(null as date) as entry_date,
    -payment_amount_amount as amount,
    cast(null as varchar) as payment_type,
    cast(null as boolean) as is_income_transfer,
    cast(null as varchar) as source_deposit_id,
    {{ writeback_charge_id('description') }} as writeback_charge_id,
    updated_at as source_updated_at,
    _extracted_at
from {{ ref('stg_nexhealth__payments') }}
where deleted_at is null
