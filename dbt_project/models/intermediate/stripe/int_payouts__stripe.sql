-- Stripe -> canonical payouts: one row per payout (po_...) to the practice's bank. amount is the
-- net sum sent; status, method, automatic and failure_code as Stripe reports them (a paid
-- payout can still fail later: the latest extraction is the current state).

select
    connection_id,
    id as source_payout_id,
    status,
    amount,
    lower(currency) as currency,
    created as created_at,
    -- Stripe's arrival_date is a UTC midnight: its UTC calendar date
    cast(timezone('UTC', arrival_date) as date) as arrival_date,
    method,
    automatic as is_automatic,
    nullif(trim(failure_code), '') as failure_code,
    -- Stripe objects carry no change stamp
    cast(null as timestamptz) as source_updated_at,
    _extracted_at
from {{ ref('stg_stripe__payouts') }}
