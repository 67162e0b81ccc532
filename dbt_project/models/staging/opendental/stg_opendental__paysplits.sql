-- Open Dental payment splits: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, split_num). Latest = the highest SecDateTEdit (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (SplitNum -> split_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('SplitNum',     'int'),
    ('SplitAmt',     'money'),
    ('PatNum',       'int'),
    ('PayNum',       'int'),
    ('ProvNum',      'int'),
    ('PayPlanNum',   'int'),
    ('DatePay',      'date'),
    ('ProcNum',      'int'),
    ('DateEntry',    'date'),
    ('UnearnedType', 'int'),
    ('ClinicNum',    'int'),
    ('SecDateTEdit', 'datetime'),
    ('AdjNum',       'int')
] %}

{{ od_staging('paysplits', fields, key='split_num', change_stamp='sec_date_t_edit') }}
