-- CareStack operatories (snapshot): the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the newest extraction (reference lists have no change stamp).

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (Id -> id); parsing rules: macros/carestack/staging.sql. #}
{%- set fields = [
    ('Id',         'int'),
    ('Name',       'text'),
    ('ShortName',  'text'),
    ('LocationId', 'int'),
    ('IsActive',   'bool')
] %}

{{ cs_staging('operatories', fields, key='id') }}
