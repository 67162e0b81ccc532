-- Stripe balance transactions: every movement of the account balance, latest extracted version.
-- Grain: one row per (connection_id, id). amount (gross), fee and net in major units; net = amount - fee.

{%- set fields = [
    ('id',                 'text'),
    ('amount',             'minor'),
    ('available_on',       'epoch'),
    ('created',            'epoch'),
    ('currency',           'text'),
    ('description',        'text'),
    ('fee',                'minor'),
    ('net',                'minor'),
    ('reporting_category', 'text'),
    ('source',             'text'),
    ('status',             'text'),
    ('type',               'text')
] %}

{{ stripe_staging('balance_transactions', fields) }}
