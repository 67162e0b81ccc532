-- Open Dental operatories: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, operatory_num). Latest = the newest extraction (the entity has no change stamp).

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (OperatoryNum -> operatory_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('OperatoryNum',  'int'),
    ('OpName',        'text'),
    ('Abbrev',        'text'),
    ('IsHidden',      'bool'),
    ('ProvDentist',   'int'),
    ('ProvHygienist', 'int'),
    ('IsHygiene',     'bool'),
    ('ClinicNum',     'int')
] %}

{{ od_staging('operatories', fields, key='operatory_num') }}
