-- The QuickBooks Deposit each paid processor payout becomes: one row per deposit line. Gross
-- charges per payment type and location (to the income or clearing account mapped per type,
-- the class mapped per location), refunds and disputes per location (negative, to the refunds
-- account), other balance movements, and the processing fees as one negative line (to the
-- merchant-fees account). The lines of a payout sum to its net: the bank line.
-- writeback/plan.py maps the lines to accounts (config writeback.quickbooks) and books only
-- payouts from the cut-over day (payouts_from).

with payouts as (

    select * from {{ ref('fct_payout_reconciliation') }}
    where payout_status = 'paid' and is_itemized

),

items as (

    select * from {{ ref('int_processor_transactions') }}
    where payout_key is not null and transaction_type <> 'payout'

),

lines as (

    select
        payout_key,
        case
            when transaction_type = 'charge' then 'gross'
            when transaction_type in ('refund', 'dispute', 'dispute_reversal') then 'refund'
            else 'other'
        end as line_kind,
        case when transaction_type = 'charge' then coalesce(payment_type, 'unknown') end
            as payment_type,
        org_location_id,
        sum(gross_amount) as amount,
        count(*) as n_transactions
    from items
    group by all

    union all

    select
        payout_key,
        'fee' as line_kind,
        null as payment_type,
        null as org_location_id,
        -sum(fee_amount) as amount,
        count(*) as n_transactions
    from items
    group by payout_key
    having sum(fee_amount) <> 0

)

select
    payouts.payout_key,
    payouts.source_payout_id,
    payouts.connection_id as processor_connection_id,
    payouts.arrival_date,
    payouts.currency,
    payouts.payout_amount,
    lines.line_kind,
    lines.payment_type,
    lines.org_location_id,
    lines.amount,
    lines.n_transactions
from payouts
inner join lines using (payout_key)
where lines.amount <> 0
