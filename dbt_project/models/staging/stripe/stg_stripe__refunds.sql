-- Stripe refunds: the latest extracted version of each, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Amounts in major units (dollars); times UTC.

{%- set fields = [
    ('id',                  'text'),
    ('amount',              'minor'),
    ('balance_transaction', 'text'),
    ('charge',              'text'),
    ('created',             'epoch'),
    ('currency',            'text'),
    ('payment_intent',      'text'),
    ('reason',              'text'),
    ('status',              'text')
] %}

{{ stripe_staging('refunds', fields) }}
