-- Stripe payouts to the bank: the latest extracted version of each, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). amount = the net sum paid out, in major units.

{%- set fields = [
    ('id',                          'text'),
    ('amount',                      'minor'),
    ('arrival_date',                'epoch'),
    ('automatic',                   'bool'),
    ('balance_transaction',         'text'),
    ('created',                     'epoch'),
    ('currency',                    'text'),
    ('description',                 'text'),
    ('destination',                 'text'),
    ('failure_balance_transaction', 'text'),
    ('failure_code',                'text'),
    ('failure_message',             'text'),
    ('method',                      'text'),
    ('reconciliation_status',       'text'),
    ('source_type',                 'text'),
    ('status',                      'text'),
    ('type',                        'text')
] %}

{{ stripe_staging('payouts', fields) }}
