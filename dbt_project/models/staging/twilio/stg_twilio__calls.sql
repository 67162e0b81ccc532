-- Twilio calls: every call leg (an inbound parent and its outbound-dial children are separate
-- rows linked by parent_call_sid), the latest version of each, parsed from the raw API JSON.
-- Grain: one row per (connection_id, sid). Latest = the highest date_updated, then the newest extraction.

{#- The API fields in API order with their wire type; rules: macros/twilio/staging.sql. #}
{%- set fields = [
    ('sid',              'text'),
    ('parent_call_sid',  'text'),
    ('account_sid',      'text'),
    ('direction',        'text'),
    ('status',           'text'),
    ('from',             'text'),
    ('from_formatted',   'text'),
    ('to',               'text'),
    ('to_formatted',     'text'),
    ('forwarded_from',   'text'),
    ('caller_name',      'text'),
    ('answered_by',      'text'),
    ('start_time',       'time'),
    ('end_time',         'time'),
    ('duration',         'count'),
    ('queue_time',       'count'),
    ('price',            'price'),
    ('price_unit',       'text'),
    ('phone_number_sid', 'text'),
    ('trunk_sid',        'text'),
    ('group_sid',        'text'),
    ('annotation',       'text'),
    ('api_version',      'text'),
    ('date_created',     'time'),
    ('date_updated',     'time'),
    ('uri',              'text')
] %}

{{ tw_staging('calls', fields) }}
