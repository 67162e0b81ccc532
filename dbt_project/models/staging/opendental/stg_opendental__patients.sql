-- Open Dental patients: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, pat_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (PatNum -> pat_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('PatNum',              'int'),
    ('LName',               'text'),
    ('FName',               'text'),
    ('MiddleI',             'text'),
    ('Preferred',           'text'),
    ('PatStatus',           'text'),
    ('Gender',              'text'),
    ('Position',            'text'),
    ('Birthdate',           'date'),
    ('Address',             'text'),
    ('Address2',            'text'),
    ('City',                'text'),
    ('State',               'text'),
    ('Zip',                 'text'),
    ('HmPhone',             'text'),
    ('WkPhone',             'text'),
    ('WirelessPhone',       'text'),
    ('Guarantor',           'int'),
    ('Email',               'text'),
    ('EstBalance',          'money'),
    ('BalTotal',            'money'),
    ('PriProv',             'int'),
    ('SecProv',             'int'),
    ('BillingType',         'text'),
    ('ChartNumber',         'text'),
    ('DateFirstVisit',      'date'),
    ('ClinicNum',           'int'),
    ('PreferConfirmMethod', 'text'),
    ('PreferContactMethod', 'text'),
    ('PreferRecallMethod',  'text'),
    ('Language',            'text'),
    ('TxtMsgOk',            'text'),
    ('DateTStamp',          'datetime'),
    ('SuperFamily',         'int'),
    ('SecDateEntry',        'date')
] %}

{{ od_staging('patients', fields, key='pat_num', change_stamp='date_t_stamp') }}
