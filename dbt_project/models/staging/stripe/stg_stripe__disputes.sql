-- Stripe disputes (chargebacks): the latest extracted version of each, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Amounts in major units (dollars); times UTC. The
-- dispute's balance transactions are in stg_stripe__balance_transactions (source = the dispute id).

{%- set fields = [
    ('id',                           'text'),
    ('amount',                       'minor'),
    ('charge',                       'text'),
    ('created',                      'epoch'),
    ('currency',                     'text'),
    ('evidence_details.due_by',      'epoch'),
    ('evidence_details.has_evidence', 'bool'),
    ('is_charge_refundable',         'bool'),
    ('payment_intent',               'text'),
    ('reason',                       'text'),
    ('status',                       'text')
] %}

{{ stripe_staging('disputes', fields) }}
