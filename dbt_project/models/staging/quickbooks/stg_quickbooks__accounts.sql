-- QuickBooks chart of accounts: the latest version of every account (inactive ones included).
-- Grain: one row per (connection_id, id). Flattening and parsing rules: macros/quickbooks/staging.sql.

{%- set fields = [
    ('Id',                            'text'),
    ('SyncToken',                     'int'),
    ('MetaData.CreateTime',           'instant'),
    ('MetaData.LastUpdatedTime',      'instant'),
    ('Name',                          'text'),
    ('AcctNum',                       'text'),
    ('Description',                   'text'),
    ('Active',                        'bool'),
    ('SubAccount',                    'bool'),
    ('ParentRef.value',               'text'),
    ('FullyQualifiedName',            'text'),
    ('Classification',                'text'),
    ('AccountType',                   'text'),
    ('AccountSubType',                'text'),
    ('CurrentBalance',                'money'),
    ('CurrentBalanceWithSubAccounts', 'money'),
    ('CurrencyRef.value',             'text')
] %}

{{ qb_staging('accounts', fields) }}
