-- Per processor payout: its components (charges, refunds, disputes, fees, net), the books
-- deposit(s) that name it, the PMS payments behind its charges, and its discrepancy codes.
-- Codes and exact conditions: docs/reconciliation.md.
--
-- The books book a payout with everything it paid out. When a failed payout's money comes back
-- (a payout_reversal transaction some later payout sweeps), the books book that later payout
-- with the failed payout's charges, refunds and fees, so the components a deposit is compared
-- with (expected_books_*) replace each such transaction with the failed payout's own items,
-- recursively. Stripe names the returning transaction on the failed payout
-- (failure_balance_transaction, read from staging: the canonical payout has no such column).

with recursive

settings as (

    select * from {{ ref('recon_settings') }}

),

payouts as (

    select * from {{ ref('int_payouts') }}

),

transactions as (

    select * from {{ ref('int_processor_transactions') }}
    where payout_key is not null

),

items as (

    select * from transactions
    where transaction_type <> 'payout'

),

own as (

    -- The payout's own transaction: present once its itemization has landed.
    select payout_key, count(*) as n_own, sum(net_amount) as own_net_amount
    from transactions
    where transaction_type = 'payout'
    group by payout_key

),

components as (

    select
        payout_key,
        count(*) as n_transactions,
        count(*) filter (where transaction_type = 'charge') as n_charges,
        count(*) filter (where transaction_type = 'refund') as n_refunds,
        count(*) filter (where transaction_type in ('dispute', 'dispute_reversal')) as n_disputes,
        coalesce(sum(gross_amount) filter (where transaction_type = 'charge'), 0)
            as charges_amount,
        coalesce(sum(gross_amount) filter (where transaction_type = 'refund'), 0)
            as refunds_amount,
        coalesce(sum(gross_amount) filter (
            where transaction_type in ('dispute', 'dispute_reversal')
        ), 0) as disputes_amount,
        coalesce(sum(gross_amount) filter (where transaction_type = 'payout_reversal'), 0)
            as returned_payouts_amount,
        coalesce(sum(gross_amount) filter (where transaction_type not in (
            'charge', 'refund', 'dispute', 'dispute_reversal', 'payout_reversal'
        )), 0) as other_amount,
        sum(gross_amount) as gross_amount,
        sum(fee_amount) as fees_amount,
        coalesce(sum(fee_amount) filter (where transaction_type = 'charge'), 0)
            as charge_fees_amount,
        sum(net_amount) as net_from_components,
        sum(gross_amount - fee_amount - net_amount) as component_residue
    from items
    group by payout_key

),

returns as (

    -- A payout_reversal transaction and the failed payout whose money it returns.
    select
        items.payout_key as carrier_payout_key,
        items.processor_transaction_key,
        failed.payout_key as failed_payout_key
    from items
    inner join {{ ref('stg_stripe__payouts') }} as stripe_payouts
        on stripe_payouts.connection_id = items.connection_id
        and stripe_payouts.failure_balance_transaction = items.source_processor_transaction_id
    inner join payouts as failed
        on failed.source_system = 'stripe'
        and failed.connection_id = stripe_payouts.connection_id
        and failed.source_payout_id = stripe_payouts.id
    where items.source_system = 'stripe'
        and items.transaction_type = 'payout_reversal'

),

carried (payout_key, carried_payout_key) as (

    -- Every payout whose items a payout's deposit books: itself and the failed ones it re-paid.
    select payout_key, payout_key from payouts
    union
    select carried.payout_key, returns.failed_payout_key
    from carried
    inner join returns
        on returns.carrier_payout_key = carried.carried_payout_key

),

expected_books as (

    select
        carried.payout_key,
        coalesce(sum(items.gross_amount), 0) as expected_books_gross_amount,
        coalesce(sum(items.fee_amount), 0) as expected_books_fee_amount
    from carried
    inner join items
        on items.payout_key = carried.carried_payout_key
    where items.processor_transaction_key not in (
        select returns.processor_transaction_key from returns
    )
    group by carried.payout_key

),

deposits as (

    select * from {{ ref('fct_deposit_reconciliation') }}
    where payout_key is not null

),

deposit_summary as (

    select
        payout_key,
        count(*) as n_deposits,
        list(source_accounting_deposit_id order by posting_number) as deposit_ids,
        sum(total_amount) as deposits_total_amount
    from deposits
    group by payout_key

),

first_deposit as (

    select * from deposits
    where posting_number = 1

),

pms as (

    select
        payout_key,
        count(*) filter (where is_posted_to_pms) as n_charges_posted_to_pms,
        count(*) filter (where status = 'unverified') as n_charges_unverified,
        sum(pms_amount) as pms_payments_amount,
        sum(expected_pms_amount) filter (where pms_ledger_synced) as expected_pms_amount
    from {{ ref('fct_charge_reconciliation') }}
    where payout_key is not null
    group by payout_key

),

joined as (

    select
        payouts.payout_key,
        payouts.source_system,
        payouts.connection_id,
        payouts.source_payout_id,
        payouts.status as payout_status,
        payouts.is_automatic,
        payouts.method,
        payouts.created_at,
        payouts.arrival_date,
        payouts.currency,
        payouts.amount as payout_amount,
        coalesce(own.n_own, 0) > 0 as is_itemized,
        coalesce(components.n_transactions, 0) as n_transactions,
        coalesce(components.n_charges, 0) as n_charges,
        coalesce(components.n_refunds, 0) as n_refunds,
        coalesce(components.n_disputes, 0) as n_disputes,
        coalesce(components.charges_amount, 0) as charges_amount,
        coalesce(components.refunds_amount, 0) as refunds_amount,
        coalesce(components.disputes_amount, 0) as disputes_amount,
        coalesce(components.returned_payouts_amount, 0) as returned_payouts_amount,
        coalesce(components.other_amount, 0) as other_amount,
        coalesce(components.gross_amount, 0) as gross_amount,
        coalesce(components.fees_amount, 0) as fees_amount,
        coalesce(components.charge_fees_amount, 0) as charge_fees_amount,
        coalesce(components.net_from_components, 0) as net_from_components,
        case
            when components.charges_amount > 0
                then round(100 * components.charge_fees_amount / components.charges_amount, 4)
        end as effective_fee_pct,
        case
            when coalesce(own.n_own, 0) > 0 then
                coalesce(components.net_from_components, 0) = payouts.amount
                and coalesce(components.component_residue, 0) = 0
                and own.own_net_amount = -payouts.amount
        end as components_balance,
        coalesce(expected_books.expected_books_gross_amount, 0) as expected_books_gross_amount,
        coalesce(expected_books.expected_books_fee_amount, 0) as expected_books_fee_amount,
        coalesce(deposit_summary.n_deposits, 0) as n_deposits,
        coalesce(deposit_summary.deposit_ids, []::varchar[]) as deposit_ids,
        deposit_summary.deposits_total_amount,
        first_deposit.accounting_deposit_key,
        first_deposit.source_accounting_deposit_id,
        first_deposit.deposit_date,
        first_deposit.total_amount as deposit_amount,
        first_deposit.books_gross_amount as deposit_gross_amount,
        first_deposit.books_fee_amount as deposit_fee_amount,
        first_deposit.n_lines as deposit_n_lines,
        date_diff('day', payouts.arrival_date, first_deposit.deposit_date)
            as deposit_days_from_arrival,
        coalesce(pms.n_charges_posted_to_pms, 0) as n_charges_posted_to_pms,
        coalesce(pms.n_charges_unverified, 0) as n_charges_unverified_in_pms,
        pms.pms_payments_amount,
        pms.expected_pms_amount,
        settings.amount_tolerance,
        settings.deposit_grace_days,
        settings.timing_tolerance_days,
        settings.fee_min_pct,
        settings.fee_max_pct,
        settings.as_of_date
    from payouts
    cross join settings
    left join own
        on own.payout_key = payouts.payout_key
    left join components
        on components.payout_key = payouts.payout_key
    left join expected_books
        on expected_books.payout_key = payouts.payout_key
    left join deposit_summary
        on deposit_summary.payout_key = payouts.payout_key
    left join first_deposit
        on first_deposit.payout_key = payouts.payout_key
    left join pms
        on pms.payout_key = payouts.payout_key

),

coded as (

    -- In dim_reconciliation_codes priority order: the first code is the primary one.
    select
        *,
        list_filter([
            case when payout_status in ('failed', 'canceled') then 'payout_failed_or_reversed' end,
            case
                when payout_status = 'paid' and n_deposits = 0
                    and as_of_date > arrival_date + deposit_grace_days
                    then 'missing_deposit'
            end,
            case when n_deposits > 1 then 'duplicate_posting' end,
            case
                when n_deposits > 0 and abs(deposit_amount - payout_amount) > amount_tolerance
                    then 'amount_mismatch_net'
            end,
            case
                when n_deposits > 0 and deposit_n_lines > 0
                    and abs(deposit_gross_amount - expected_books_gross_amount) > amount_tolerance
                    then 'amount_mismatch_gross'
            end,
            case
                when n_deposits > 0 and deposit_n_lines > 0
                    and abs(deposit_fee_amount - expected_books_fee_amount) > amount_tolerance
                    then 'amount_mismatch_fee'
            end,
            case
                when abs(deposit_days_from_arrival) > timing_tolerance_days
                    then 'timing_difference'
            end,
            case
                when charges_amount > 0 and (
                    charge_fees_amount * 100 < fee_min_pct * charges_amount
                    or charge_fees_amount * 100 > fee_max_pct * charges_amount
                ) then 'fee_anomaly'
            end,
            case when n_refunds + n_disputes > 0 then 'refund_or_chargeback_netted' end
        ], lambda code: code is not null) as codes
    from joined

)

select
    payout_key,
    source_system,
    connection_id,
    source_payout_id,
    payout_status,
    is_automatic,
    method,
    created_at,
    arrival_date,
    currency,
    is_itemized,
    n_transactions,
    n_charges,
    n_refunds,
    n_disputes,
    charges_amount,
    refunds_amount,
    disputes_amount,
    returned_payouts_amount,
    other_amount,
    gross_amount,
    fees_amount,
    charge_fees_amount,
    effective_fee_pct,
    net_from_components,
    payout_amount,
    components_balance,
    expected_books_gross_amount,
    expected_books_fee_amount,
    n_deposits,
    deposit_ids,
    deposits_total_amount,
    accounting_deposit_key,
    source_accounting_deposit_id,
    deposit_date,
    deposit_amount,
    deposit_gross_amount,
    deposit_fee_amount,
    deposit_amount - payout_amount as net_difference,
    deposit_gross_amount - expected_books_gross_amount as gross_difference,
    deposit_fee_amount - expected_books_fee_amount as fee_difference,
    deposit_days_from_arrival,
    n_charges_posted_to_pms,
    n_charges_unverified_in_pms,
    pms_payments_amount,
    expected_pms_amount,
    codes,
    codes[1] as primary_code,
    case
        when len(codes) > 0 then 'exception'
        when payout_status in ('pending', 'in_transit') then 'open'
        when payout_status = 'paid' and n_deposits = 0 then 'open'
        else 'ok'
    end as status,
    as_of_date
from coded
