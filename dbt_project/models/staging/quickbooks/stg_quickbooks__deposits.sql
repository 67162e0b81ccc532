-- QuickBooks deposits (headers): the latest version of each. Lines: stg_quickbooks__deposit_lines.
-- Grain: one row per (connection_id, id). total_amt = sum of the lines - cash_back_amount.

{%- set fields = [
    ('Id',                        'text'),
    ('SyncToken',                 'int'),
    ('MetaData.CreateTime',       'instant'),
    ('MetaData.LastUpdatedTime',  'instant'),
    ('TxnDate',                   'date'),
    ('DocNumber',                 'text'),
    ('PrivateNote',               'text'),
    ('TotalAmt',                  'money'),
    ('DepositToAccountRef.value', 'text'),
    ('DepositToAccountRef.name',  'text'),
    ('DepartmentRef.value',       'text'),
    ('CurrencyRef.value',         'text'),
    ('CashBack.Amount',           'money'),
    ('CashBack.AccountRef.value', 'text')
] %}

{{ qb_staging('deposits', fields) }}
