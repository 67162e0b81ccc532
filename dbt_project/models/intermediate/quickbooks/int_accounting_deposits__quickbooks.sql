-- QuickBooks Online -> canonical accounting deposits: one row per Deposit (header; the lines
-- stay in stg_quickbooks__deposit_lines). TotalAmt is net of negative fee/refund lines.
--
-- processor_payout_ref: the processor payout the deposit books. The books keep it in
-- PrivateNote (a Stripe payout id is 27 characters, DocNumber holds 21), so it is the first
-- Stripe payout id (po_...) in PrivateNote, else in DocNumber; NULL when neither names one.

with deposits as (

    select
        *,
        nullif(regexp_extract(private_note, 'po_[0-9A-Za-z]+'), '') as note_payout,
        nullif(regexp_extract(doc_number, 'po_[0-9A-Za-z]+'), '') as doc_payout
    from {{ ref('stg_quickbooks__deposits') }}

)

select
    connection_id,
    id as source_accounting_deposit_id,
    nullif(trim(deposit_to_account_ref_value), '') as source_deposit_account_id,
    txn_date as deposit_date,
    total_amt as total_amount,
    lower(currency_ref_value) as currency,
    nullif(trim(doc_number), '') as doc_number,
    nullif(trim(private_note), '') as memo,
    coalesce(note_payout, doc_payout) as processor_payout_ref,
    nullif(trim(department_ref_value), '') as source_department_id,
    meta_data_create_time as created_at,
    meta_data_last_updated_time as source_updated_at,
    _extracted_at
from deposits
