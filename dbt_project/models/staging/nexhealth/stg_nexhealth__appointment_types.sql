-- NexHealth appointment types: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the newest extraction (no change stamp).

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',              'int'),
    ('name',            'text'),
    ('parent_type',     'text'),
    ('parent_id',       'int'),
    ('minutes',         'int'),
    ('bookable_online', 'bool')
] %}

{{ nx_staging('appointment_types', fields, key='id', change_stamp=none) }}
