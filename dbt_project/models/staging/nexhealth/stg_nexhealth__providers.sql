-- NexHealth providers: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest updated_at, then the newest extraction.

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',              'int'),
    ('email',           'text'),
    ('first_name',      'text'),
    ('middle_name',     'text'),
    ('last_name',       'text'),
    ('name',            'text'),
    ('display_name',    'text'),
    ('created_at',      'timestamp'),
    ('updated_at',      'timestamp'),
    ('institution_id',  'int'),
    ('foreign_id_type', 'text'),
    ('foreign_id',      'text'),
    ('inactive',        'bool'),
    ('npi',             'text'),
    ('tin',             'text'),
    ('specialty_code',  'text'),
    ('locations',       'json'),
    ('last_sync_time',  'timestamp')
] %}

{{ nx_staging('providers', fields, key='id', change_stamp='updated_at') }}
