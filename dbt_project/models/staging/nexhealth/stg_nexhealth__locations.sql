-- NexHealth locations of the institution: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest updated_at, then the newest extraction.

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',                            'int'),
    ('name',                          'text'),
    ('institution_id',                'int'),
    ('street_address',                'text'),
    ('street_address_2',              'text'),
    ('city',                          'text'),
    ('state',                         'text'),
    ('zip_code',                      'text'),
    ('country_code',                  'text'),
    ('created_at',                    'timestamp'),
    ('updated_at',                    'timestamp'),
    ('latitude',                      'float'),
    ('longitude',                     'float'),
    ('phone_number',                  'text'),
    ('foreign_id',                    'text'),
    ('foreign_id_type',               'text'),
    ('email',                         'text'),
    ('tz',                            'text'),
    ('last_sync_time',                'timestamp'),
    ('insert_appt_client',            'bool'),
    ('map_by_operatory',              'bool'),
    ('set_availability_by_operatory', 'bool'),
    ('inactive',                      'bool')
] %}

{{ nx_staging('locations', fields, key='id', change_stamp='updated_at') }}
