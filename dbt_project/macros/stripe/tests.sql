{#
    Invariant: a payout's itemized balance transactions (GET /v1/balance_transactions?payout=)
    net to the payout's amount, and the payout's own transaction debits exactly that amount.
    Checked for every payout whose itemization has landed; one failing row per payout.

    data_tests:
      - stripe_payout_itemization_balances:
          arguments:
            itemization: ref('stg_stripe__payout_balance_transactions')
#}
{% test stripe_payout_itemization_balances(model, itemization) %}
with items as (
    select
        connection_id,
        payout_id,
        sum(case when type <> 'payout' then net end) as itemized_net,
        sum(case when type = 'payout' then -amount end) as payout_debit
    from {{ itemization }}
    group by 1, 2
)

select
    payouts.connection_id,
    payouts.id,
    payouts.amount,
    items.itemized_net,
    items.payout_debit
from {{ model }} as payouts
join items
    on items.connection_id = payouts.connection_id
    and items.payout_id = payouts.id
where items.itemized_net is distinct from payouts.amount
   or items.payout_debit is distinct from payouts.amount
{% endtest %}


{#
    Every automatic payout has its itemization landed (warn: the itemization is read right after
    the payouts, so a payout that landed in a run that then failed waits for the next run).
#}
{% test stripe_payout_is_itemized(model, itemization) %}
{{ config(severity='warn') }}
select payouts.connection_id, payouts.id
from {{ model }} as payouts
where payouts.automatic
  and not exists (
    select 1 from {{ itemization }} as items
    where items.connection_id = payouts.connection_id and items.payout_id = payouts.id
  )
{% endtest %}
