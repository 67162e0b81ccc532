-- Online appointment requests (sync feed): the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest lastModifiedOn, then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (locationId -> location_id); parsing rules: macros/carestack/staging.sql. #}
{%- set fields = [
    ('id',             'int'),
    ('locationId',     'int'),
    ('patientId',      'int'),
    ('appointmentId',  'int'),
    ('firstName',      'text'),
    ('lastName',       'text'),
    ('dateOfBirth',    'date'),
    ('email',          'text'),
    ('phone',          'text'),
    ('isNewPatient',   'bool'),
    ('reason',         'text'),
    ('preferredDate',  'date'),
    ('status',         'text'),
    ('createdOn',      'instant'),
    ('lastModifiedOn', 'instant')
] %}

{{ cs_staging('appointment_requests', fields, key='id', change_stamp='last_modified_on') }}
