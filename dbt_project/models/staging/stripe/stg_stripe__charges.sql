-- Stripe charges (card payments): the latest extracted version of each, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Amounts in major units (dollars); times UTC.

{#- (JSON path, wire type); column = path with "." -> "_". Rules: macros/stripe/staging.sql. #}
{%- set fields = [
    ('id',                          'text'),
    ('amount',                      'minor'),
    ('amount_captured',             'minor'),
    ('amount_refunded',             'minor'),
    ('balance_transaction',         'text'),
    ('captured',                    'bool'),
    ('created',                     'epoch'),
    ('currency',                    'text'),
    ('description',                 'text'),
    ('disputed',                    'bool'),
    ('livemode',                    'bool'),
    ('metadata.payment_type',       'text'),
    ('metadata.location',           'text'),
    ('metadata.patient_ref',        'text'),
    ('metadata.pms_payment_ref',    'text'),
    ('metadata.pms_clinic_num',     'text'),
    ('paid',                        'bool'),
    ('payment_intent',              'text'),
    ('payment_method_details.type', 'text'),
    ('refunded',                    'bool'),
    ('status',                      'text')
] %}

{{ stripe_staging('charges', fields) }}
