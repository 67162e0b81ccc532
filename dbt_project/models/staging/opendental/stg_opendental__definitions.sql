-- Open Dental definitions: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, def_num). Latest = the newest extraction (the entity has no change stamp).

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (DefNum -> def_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('DefNum',    'int'),
    ('Category',  'int'),
    ('category',  'text'),
    ('ItemName',  'text'),
    ('ItemValue', 'text'),
    ('ItemOrder', 'int'),
    ('IsHidden',  'bool')
] %}

{{ od_staging('definitions', fields, key='def_num') }}
