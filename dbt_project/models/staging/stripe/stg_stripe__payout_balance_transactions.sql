-- Which balance transactions each automatic payout paid out (GET /v1/balance_transactions?payout=),
-- with the transactions' amounts as itemized. Includes the payout's own transaction (type payout).
-- Grain: one row per (connection_id, payout_id, id). The payout id comes from the landing key
-- `<payout id>:<txn id>`, because Stripe names it only in the request.

{%- set fields = [
    ('id',                 'text'),
    ('amount',             'minor'),
    ('available_on',       'epoch'),
    ('created',            'epoch'),
    ('currency',           'text'),
    ('fee',                'minor'),
    ('net',                'minor'),
    ('reporting_category', 'text'),
    ('source',             'text'),
    ('status',             'text'),
    ('type',               'text')
] %}

{{ stripe_staging(
    'payout_balance_transactions', fields, keys=['payout_id', 'id'],
    extra=["split_part(_record_key, ':', 1) as payout_id"]
) }}
