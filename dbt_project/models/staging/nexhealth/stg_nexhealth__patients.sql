-- NexHealth patients: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest updated_at, then the newest extraction.

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',                    'int'),
    ('email',                 'text'),
    ('first_name',            'text'),
    ('middle_name',           'text'),
    ('last_name',             'text'),
    ('name',                  'text'),
    ('created_at',            'timestamp'),
    ('updated_at',            'timestamp'),
    ('institution_id',        'int'),
    ('foreign_id_type',       'text'),
    ('foreign_id',            'text'),
    ('bio.city',              'text'),
    ('bio.state',             'text'),
    ('bio.gender',            'text'),
    ('bio.zip_code',          'text'),
    ('bio.new_patient',       'bool'),
    ('bio.non_patient',       'bool'),
    ('bio.phone_number',      'text'),
    ('bio.date_of_birth',     'date'),
    ('bio.address_line_1',    'text'),
    ('bio.address_line_2',    'text'),
    ('bio.street_address',    'text'),
    ('bio.cell_phone_number', 'text'),
    ('bio.home_phone_number', 'text'),
    ('bio.work_phone_number', 'text'),
    ('inactive',              'bool'),
    ('last_sync_time',        'timestamp'),
    ('guarantor_id',          'int'),
    ('billing_type',          'text'),
    ('chart_id',              'text'),
    ('preferred_language',    'text'),
    ('provider_id',           'int'),
    ('location_ids',          'int_list')
] %}

{{ nx_staging('patients', fields, key='id', change_stamp='updated_at') }}
