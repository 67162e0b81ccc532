-- CareStack patients (sync feed): the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest lastModifiedOn, then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (firstName -> first_name); parsing rules: macros/carestack/staging.sql. #}
{%- set fields = [
    ('id',                'int'),
    ('firstName',         'text'),
    ('lastName',          'text'),
    ('middleName',        'text'),
    ('preferredName',     'text'),
    ('dob',               'date'),
    ('gender',            'text'),
    ('maritalStatus',     'text'),
    ('email',             'text'),
    ('mobile',            'text'),
    ('homePhone',         'text'),
    ('workPhone',         'text'),
    ('addressLine1',      'text'),
    ('addressLine2',      'text'),
    ('city',              'text'),
    ('state',             'text'),
    ('zipCode',           'text'),
    ('defaultLocationId', 'int'),
    ('status',            'text'),
    ('guarantorId',       'int'),
    ('primaryProviderId', 'int'),
    ('firstVisitDate',    'date'),
    ('lastModifiedOn',    'instant')
] %}

{{ cs_staging('patients', fields, key='id', change_stamp='last_modified_on') }}
