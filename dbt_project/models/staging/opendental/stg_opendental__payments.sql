-- Open Dental patient payments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, pay_num). Latest = the highest SecDateTEdit (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (PayNum -> pay_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('PayNum',        'int'),
    ('PayType',       'int'),
    ('payType',       'text'),
    ('PayDate',       'date'),
    ('PayAmt',        'money'),
    ('CheckNum',      'text'),
    ('BankBranch',    'text'),
    ('PayNote',       'text'),
    ('PatNum',        'int'),
    ('ClinicNum',     'int'),
    ('DateEntry',     'date'),
    ('DepositNum',    'int'),
    ('IsRecurringCC', 'bool'),
    ('SecDateTEdit',  'datetime'),
    ('PaymentSource', 'text'),
    ('ProcessStatus', 'text')
] %}

{{ od_staging('payments', fields, key='pay_num', change_stamp='sec_date_t_edit') }}
