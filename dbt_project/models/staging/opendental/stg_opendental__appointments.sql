-- Open Dental appointments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, apt_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (AptNum -> apt_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('AptNum',             'int'),
    ('PatNum',             'int'),
    ('AptStatus',          'text'),
    ('Pattern',            'text'),
    ('Confirmed',          'int'),
    ('confirmed',          'text'),
    ('Op',                 'int'),
    ('Note',               'text'),
    ('ProvNum',            'int'),
    ('provAbbr',           'text'),
    ('ProvHyg',            'int'),
    ('AptDateTime',        'datetime'),
    ('NextAptNum',         'int'),
    ('UnschedStatus',      'int'),
    ('IsNewPatient',       'bool'),
    ('ProcDescript',       'text'),
    ('ClinicNum',          'int'),
    ('IsHygiene',          'bool'),
    ('DateTStamp',         'datetime'),
    ('DateTimeArrived',    'datetime'),
    ('DateTimeSeated',     'datetime'),
    ('DateTimeDismissed',  'datetime'),
    ('AppointmentTypeNum', 'int'),
    ('SecDateTEntry',      'datetime'),
    ('Priority',           'text')
] %}

{{ od_staging('appointments', fields, key='apt_num', change_stamp='date_t_stamp') }}
