-- NexHealth ledger payments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest updated_at, then the newest extraction.

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',                      'int'),
    ('foreign_id',              'text'),
    ('location_id',             'int'),
    ('patient_id',              'int'),
    ('guarantor_id',            'int'),
    ('provider_id',             'int'),
    ('updated_at',              'timestamp'),
    ('description',             'text'),
    ('deleted_at',              'timestamp'),
    ('payment_amount.amount',   'money'),
    ('payment_amount.currency', 'text'),
    ('paid_at',                 'date'),
    ('transaction_id',          'text'),
    ('charge_id',               'int'),
    ('claim_id',                'int'),
    ('payment_plan_id',         'int'),
    ('insurance_plan_id',       'int'),
    ('payment_type_id',         'int')
] %}

{{ nx_staging('payments', fields, key='id', change_stamp='updated_at') }}
