-- Every books transaction that moves money between accounts, with both sides summed, so that
-- "every ledger transaction balances" is a column (is_balanced) and a test.
--
-- deposit:        debits = the deposit's total to the bank plus any cash back; credits = its
--                 lines (income, and negative fee/refund/chargeback lines, as the lines' accounts
--                 are credited). Balanced when the lines sum to the total plus cash back.
-- journal_entry:  debits and credits = its Debit and Credit lines; balanced when they are equal
--                 and the header total is that sum.
-- QuickBooks only: lines and journal entries are not in the canonical model yet.

with deposits as (

    select * from {{ ref('stg_quickbooks__deposits') }}

),

deposit_lines as (

    select connection_id, deposit_id, count(*) as n_lines, sum(amount) as lines_amount
    from {{ ref('stg_quickbooks__deposit_lines') }}
    group by connection_id, deposit_id

),

entries as (

    select * from {{ ref('stg_quickbooks__journal_entries') }}

),

entry_lines as (

    select
        connection_id,
        journal_entry_id,
        count(*) as n_lines,
        coalesce(sum(amount) filter (
            where journal_entry_line_detail_posting_type = 'Debit'
        ), 0) as debit_amount,
        coalesce(sum(amount) filter (
            where journal_entry_line_detail_posting_type = 'Credit'
        ), 0) as credit_amount
    from {{ ref('stg_quickbooks__journal_entry_lines') }}
    group by connection_id, journal_entry_id

),

ledger as (

    select
        'quickbooks' as source_system,
        deposits.connection_id,
        'deposit' as transaction_kind,
        deposits.id as source_transaction_id,
        deposits.txn_date as transaction_date,
        deposits.doc_number,
        deposits.private_note as memo,
        deposits.total_amt as total_amount,
        coalesce(deposit_lines.n_lines, 0) as n_lines,
        deposits.total_amt + coalesce(deposits.cash_back_amount, 0) as debit_amount,
        coalesce(deposit_lines.lines_amount, 0) as credit_amount
    from deposits
    left join deposit_lines
        on deposit_lines.connection_id = deposits.connection_id
        and deposit_lines.deposit_id = deposits.id

    union all

    select
        'quickbooks' as source_system,
        entries.connection_id,
        'journal_entry' as transaction_kind,
        entries.id as source_transaction_id,
        entries.txn_date as transaction_date,
        entries.doc_number,
        entries.private_note as memo,
        entries.total_amt as total_amount,
        coalesce(entry_lines.n_lines, 0) as n_lines,
        coalesce(entry_lines.debit_amount, 0) as debit_amount,
        coalesce(entry_lines.credit_amount, 0) as credit_amount
    from entries
    left join entry_lines
        on entry_lines.connection_id = entries.connection_id
        and entry_lines.journal_entry_id = entries.id

)

select
    md5(source_system || '-' || connection_id || '-' || transaction_kind || '-'
        || source_transaction_id) as ledger_transaction_key,
    source_system,
    connection_id,
    transaction_kind,
    source_transaction_id,
    transaction_date,
    doc_number,
    memo,
    total_amount,
    n_lines,
    debit_amount,
    credit_amount,
    debit_amount - credit_amount as imbalance_amount,
    debit_amount = credit_amount
        and (transaction_kind = 'deposit' or total_amount = debit_amount) as is_balanced
from ledger
