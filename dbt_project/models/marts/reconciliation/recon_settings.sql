{{ config(materialized='ephemeral') }}

-- The reconciliation settings (config `reconciliation`, landed as organisation.settings) and the
-- date every rule that waits for something is judged at.
--
-- as_of_date: the UTC date of the newest record the processor and the books have synced (a
-- transaction, payout or deposit created), not the wall clock, so a rebuild of the same data
-- gives the same answer and a stalled sync cannot make fresh payouts look overdue.

with settings as (

    -- Money compared exactly (decimal), day counts as integers (dates add integers).
    select
        cast(amount_tolerance as decimal(18, 4)) as amount_tolerance,
        cast(deposit_grace_days as integer) as deposit_grace_days,
        cast(timing_tolerance_days as integer) as timing_tolerance_days,
        cast(fee_min_pct as double) as fee_min_pct,
        cast(fee_max_pct as double) as fee_max_pct
    from {{ source('organisation', 'settings') }}

),

synced as (

    select created_at from {{ ref('int_processor_transactions') }}
    union all
    select created_at from {{ ref('int_payouts') }}
    union all
    select created_at from {{ ref('int_accounting_deposits') }}

)

select
    settings.*,
    (select cast(timezone('UTC', max(created_at)) as date) from synced) as as_of_date
from settings
