-- NexHealth operatories: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest updated_at, then the newest extraction.

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',              'int'),
    ('name',            'text'),
    ('display_name',    'text'),
    ('location_id',     'int'),
    ('foreign_id',      'text'),
    ('foreign_id_type', 'text'),
    ('active',          'bool'),
    ('bookable_online', 'bool'),
    ('created_at',      'timestamp'),
    ('updated_at',      'timestamp'),
    ('last_sync_time',  'timestamp')
] %}

{{ nx_staging('operatories', fields, key='id', change_stamp='updated_at') }}
