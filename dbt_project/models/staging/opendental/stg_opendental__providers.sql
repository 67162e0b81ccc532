-- Open Dental providers: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, prov_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (ProvNum -> prov_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('ProvNum',        'int'),
    ('Abbr',           'text'),
    ('LName',          'text'),
    ('FName',          'text'),
    ('Suffix',         'text'),
    ('Specialty',      'int'),
    ('IsSecondary',    'bool'),
    ('IsHidden',       'bool'),
    ('NationalProvID', 'text'),
    ('DateTStamp',     'datetime'),
    ('IsNotPerson',    'bool'),
    ('ProvStatus',     'text')
] %}

{{ od_staging('providers', fields, key='prov_num', change_stamp='date_t_stamp') }}
