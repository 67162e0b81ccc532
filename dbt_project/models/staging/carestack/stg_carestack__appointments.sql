-- CareStack appointments (sync feed): the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest lastModifiedOn, then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (patientId -> patient_id); parsing rules: macros/carestack/staging.sql. #}
{%- set fields = [
    ('id',             'int'),
    ('patientId',      'int'),
    ('locationId',     'int'),
    ('operatoryId',    'int'),
    ('providerIds',    'int_list'),
    ('dateTime',       'local'),
    ('duration',       'int'),
    ('statusId',       'int'),
    ('notes',          'text'),
    ('createdOn',      'instant'),
    ('lastModifiedOn', 'instant')
] %}

{{ cs_staging('appointments', fields, key='id', change_stamp='last_modified_on') }}
