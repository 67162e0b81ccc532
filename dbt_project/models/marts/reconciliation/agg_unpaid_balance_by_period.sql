-- The processor balance not yet paid out at each month end (UTC), per processor account and
-- currency: every balance transaction created before the period ends (charges, refunds,
-- disputes, returned payouts, ...) that no payout created before then has swept. A payout takes
-- its items when it is created; money a failed payout returns is a new transaction, unpaid
-- until a later payout sweeps it. The current month is included up to the data's as-of date
-- (is_period_closed false).
--
-- processor_balance_amount is the same balance the other way round: the net of every
-- transaction up to the period end, payouts' own debits included. The two must agree
-- (matches_processor_balance), or a payout's items are missing.

with settings as (

    select * from {{ ref('recon_settings') }}

),

transactions as (

    select * from {{ ref('int_processor_transactions') }}

),

payouts as (

    select payout_key, created_at as paid_out_at
    from {{ ref('int_payouts') }}

),

accounts as (

    select
        source_system,
        connection_id,
        currency,
        date_trunc('month', min(timezone('UTC', created_at))) as first_month,
        date_trunc('month', max(timezone('UTC', created_at))) as last_month
    from transactions
    group by source_system, connection_id, currency

),

periods as (

    select
        accounts.source_system,
        accounts.connection_id,
        accounts.currency,
        cast(months.period_start as date) as period_start,
        cast(months.period_start + interval 1 month as date) - 1 as period_end,
        -- The instant the period ends: midnight UTC starting the next month.
        timezone('UTC', months.period_start + interval 1 month) as period_end_at
    from accounts,
        unnest(range(
            accounts.first_month, accounts.last_month + interval 1 month, interval 1 month
        )) as months (period_start)

),

positions as (

    select
        periods.source_system,
        periods.connection_id,
        periods.currency,
        periods.period_start,
        periods.period_end,
        transactions.transaction_type,
        transactions.gross_amount,
        transactions.fee_amount,
        transactions.net_amount,
        transactions.available_on <= periods.period_end + 1 as is_available,
        transactions.transaction_type <> 'payout'
            and (payouts.paid_out_at is null or payouts.paid_out_at >= periods.period_end_at)
            as is_unpaid
    from periods
    inner join transactions
        on transactions.source_system = periods.source_system
        and transactions.connection_id = periods.connection_id
        and transactions.currency = periods.currency
        and transactions.created_at < periods.period_end_at
    left join payouts
        on payouts.payout_key = transactions.payout_key

),

balances as (

    select
        source_system,
        connection_id,
        currency,
        period_start,
        period_end,
        count(*) filter (where is_unpaid) as n_unpaid_transactions,
        coalesce(sum(gross_amount) filter (where is_unpaid), 0) as unpaid_gross_amount,
        coalesce(sum(fee_amount) filter (where is_unpaid), 0) as unpaid_fee_amount,
        coalesce(sum(net_amount) filter (where is_unpaid), 0) as unpaid_net_amount,
        coalesce(sum(net_amount) filter (where is_unpaid and is_available), 0)
            as unpaid_available_amount,
        coalesce(sum(net_amount) filter (where is_unpaid and not is_available), 0)
            as unpaid_pending_amount,
        sum(net_amount) as processor_balance_amount
    from positions
    group by source_system, connection_id, currency, period_start, period_end

)

select
    balances.source_system,
    balances.connection_id,
    balances.currency,
    balances.period_start,
    balances.period_end,
    balances.period_end < settings.as_of_date as is_period_closed,
    balances.n_unpaid_transactions,
    balances.unpaid_gross_amount,
    balances.unpaid_fee_amount,
    balances.unpaid_net_amount,
    balances.unpaid_available_amount,
    balances.unpaid_pending_amount,
    balances.processor_balance_amount,
    balances.unpaid_net_amount = balances.processor_balance_amount as matches_processor_balance
from balances
cross join settings
