-- Per books deposit: the processor payout it names, its components as the books record them,
-- and which posting of that payout it is.
--
-- A deposit's lines (QuickBooks: stg_quickbooks__deposit_lines; the canonical model has no line
-- entity yet) split into fees (lines to expense accounts, e.g. Merchant Fees, negative) and the
-- gross (every other line: income per payment type, negative refund and chargeback lines), so
-- books_gross_amount - books_fee_amount = total_amount. A deposit without lines has no split.
-- Deposits naming no processor payout (cash, checks) are here with no payout and no code.

with deposits as (

    select * from {{ ref('int_accounting_deposits') }}

),

payouts as (

    select * from {{ ref('int_payouts') }}

),

accounts as (

    select * from {{ ref('int_accounting_accounts') }}

),

lines as (

    select
        'quickbooks' as source_system,
        lines.connection_id,
        lines.deposit_id,
        lines.amount,
        accounts.classification
    from {{ ref('stg_quickbooks__deposit_lines') }} as lines
    left join accounts
        on accounts.source_system = 'quickbooks'
        and accounts.connection_id = lines.connection_id
        and accounts.source_accounting_account_id = lines.deposit_line_detail_account_ref_value

),

split as (

    select
        source_system,
        connection_id,
        deposit_id,
        count(*) as n_lines,
        coalesce(sum(amount) filter (where classification is distinct from 'expense'), 0)
            as books_gross_amount,
        coalesce(-sum(amount) filter (where classification = 'expense'), 0) as books_fee_amount
    from lines
    group by source_system, connection_id, deposit_id

),

named as (

    select
        deposits.*,
        payouts.payout_key,
        split.n_lines,
        split.books_gross_amount,
        split.books_fee_amount
    from deposits
    left join payouts
        on payouts.source_payout_id = deposits.processor_payout_ref
    left join split
        on split.source_system = deposits.source_system
        and split.connection_id = deposits.connection_id
        and split.deposit_id = deposits.source_accounting_deposit_id

)

select
    accounting_deposit_key,
    source_system,
    connection_id,
    source_accounting_deposit_id,
    deposit_date,
    created_at,
    total_amount,
    currency,
    doc_number,
    memo,
    processor_payout_ref,
    payout_key,
    coalesce(n_lines, 0) as n_lines,
    books_gross_amount,
    books_fee_amount,
    case
        when payout_key is not null then row_number() over (
            partition by payout_key
            order by created_at, try_cast(source_accounting_deposit_id as bigint),
                source_accounting_deposit_id
        )
    end as posting_number,
    case
        when processor_payout_ref is not null and payout_key is null then ['orphan_deposit']
        else []
    end::varchar[] as codes,
    case
        when processor_payout_ref is not null and payout_key is null then 'orphan_deposit'
    end as primary_code,
    case
        when processor_payout_ref is null then 'not_processor'
        when payout_key is null then 'exception'
        else 'matched'
    end as status
from named
