{#
    A payout's deposit lines sum to the payout's net amount (the bank line): the Deposit
    Chairside books balances. Fails with the payouts that do not.
#}
{% test deposit_lines_sum_to_payout(model) %}
select payout_key, source_payout_id, max(payout_amount) as payout_amount, sum(amount) as lines_amount
from {{ model }}
group by payout_key, source_payout_id
having sum(amount) <> max(payout_amount)
{% endtest %}
