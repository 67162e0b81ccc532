-- Open Dental clinics: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, clinic_num). Latest = the newest extraction (the entity has no change stamp).

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (ClinicNum -> clinic_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('ClinicNum',   'int'),
    ('Description', 'text'),
    ('Abbr',        'text'),
    ('Address',     'text'),
    ('Address2',    'text'),
    ('City',        'text'),
    ('State',       'text'),
    ('Zip',         'text'),
    ('Phone',       'text'),
    ('IsHidden',    'bool')
] %}

{{ od_staging('clinics', fields, key='clinic_num') }}
