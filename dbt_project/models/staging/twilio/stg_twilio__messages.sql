-- Twilio messages (SMS/MMS) in every direction, the latest version of each, parsed from the raw API JSON.
-- Grain: one row per (connection_id, sid). Latest = the highest date_updated, then the newest extraction.

{#- The API fields in API order with their wire type; rules: macros/twilio/staging.sql. #}
{%- set fields = [
    ('sid',                   'text'),
    ('account_sid',           'text'),
    ('messaging_service_sid', 'text'),
    ('direction',             'text'),
    ('status',                'text'),
    ('from',                  'text'),
    ('to',                    'text'),
    ('body',                  'text'),
    ('num_segments',          'count'),
    ('num_media',             'count'),
    ('error_code',            'count'),
    ('error_message',         'text'),
    ('price',                 'price'),
    ('price_unit',            'text'),
    ('api_version',           'text'),
    ('date_created',          'time'),
    ('date_sent',             'time'),
    ('date_updated',          'time'),
    ('uri',                   'text')
] %}

{{ tw_staging('messages', fields) }}
