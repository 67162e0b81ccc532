{#
    Invariant: a transaction's lines sum to its TotalAmt (less CashBack, for deposits that
    keep some cash back). One failing row per transaction, with both sums.

    data_tests:
      - qb_lines_sum_to_total:
          arguments:
            lines: ref('stg_quickbooks__deposit_lines')
            parent_column: deposit_id
#}
{% test qb_lines_sum_to_total(model, lines, parent_column, cash_back_column=none) %}
with sums as (
    select connection_id, {{ parent_column }} as id, sum(amount) as lines_total
    from {{ lines }}
    group by 1, 2
)

select
    txn.connection_id,
    txn.id,
    txn.total_amt,
    coalesce(sums.lines_total, 0) as lines_total
from {{ model }} as txn
left join sums
    on sums.connection_id = txn.connection_id
    and sums.id = txn.id
where txn.total_amt is distinct from coalesce(sums.lines_total, 0)
    {%- if cash_back_column %} - coalesce(txn.{{ cash_back_column }}, 0){% endif %}
{% endtest %}


{#
    Invariant: a journal entry balances (its debit lines sum to its credit lines) and its
    TotalAmt is that sum. Applied to the journal entries model, with the lines model as argument.
#}
{% test qb_journal_entry_balances(model, lines) %}
with sides as (
    select
        connection_id,
        journal_entry_id as id,
        sum(case when journal_entry_line_detail_posting_type = 'Debit' then amount else 0 end) as debits,
        sum(case when journal_entry_line_detail_posting_type = 'Credit' then amount else 0 end) as credits
    from {{ lines }}
    group by 1, 2
)

select entries.connection_id, entries.id, entries.total_amt, sides.debits, sides.credits
from {{ model }} as entries
left join sides
    on sides.connection_id = entries.connection_id
    and sides.id = entries.id
where sides.debits is distinct from sides.credits
   or sides.debits is distinct from entries.total_amt
{% endtest %}
