-- Open Dental ledger adjustments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, adj_num). Latest = the highest SecDateTEdit (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (AdjNum -> adj_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('AdjNum',          'int'),
    ('AdjDate',         'date'),
    ('AdjAmt',          'money'),
    ('PatNum',          'int'),
    ('AdjType',         'int'),
    ('adjType',         'text'),
    ('ProvNum',         'int'),
    ('AdjNote',         'text'),
    ('ProcDate',        'date'),
    ('ProcNum',         'int'),
    ('DateEntry',       'date'),
    ('ClinicNum',       'int'),
    ('SecUserNumEntry', 'int'),
    ('SecDateTEdit',    'datetime')
] %}

{{ od_staging('adjustments', fields, key='adj_num', change_stamp='sec_date_t_edit') }}
