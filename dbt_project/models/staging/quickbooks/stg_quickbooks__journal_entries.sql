-- QuickBooks journal entries (headers): the latest version of each. Lines: stg_quickbooks__journal_entry_lines.
-- Grain: one row per (connection_id, id). total_amt = the sum of the debit lines.

{%- set fields = [
    ('Id',                       'text'),
    ('SyncToken',                'int'),
    ('MetaData.CreateTime',      'instant'),
    ('MetaData.LastUpdatedTime', 'instant'),
    ('TxnDate',                  'date'),
    ('DocNumber',                'text'),
    ('PrivateNote',              'text'),
    ('Adjustment',               'bool'),
    ('TotalAmt',                 'money'),
    ('CurrencyRef.value',        'text')
] %}

{{ qb_staging('journal_entries', fields) }}
