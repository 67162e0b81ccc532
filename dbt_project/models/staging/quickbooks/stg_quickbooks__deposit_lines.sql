-- QuickBooks deposit lines: the `Line` array of each deposit's latest version, one row per line.
-- Grain: one row per (connection_id, deposit_id, line_index). Direct lines carry
-- DepositLineDetail (account, class); lines taking a Payment out of Undeposited Funds carry
-- LinkedTxn instead. A negative amount (fees, refunds, chargebacks) reduces the deposit.

{%- set fields = [
    ('Id',                                       'text'),
    ('LineNum',                                  'int'),
    ('Description',                              'text'),
    ('Amount',                                   'money'),
    ('DetailType',                               'text'),
    ('DepositLineDetail.AccountRef.value',       'text'),
    ('DepositLineDetail.AccountRef.name',        'text'),
    ('DepositLineDetail.ClassRef.value',         'text'),
    ('DepositLineDetail.ClassRef.name',          'text'),
    ('DepositLineDetail.Entity.value',           'text'),
    ('DepositLineDetail.Entity.type',            'text'),
    ('DepositLineDetail.PaymentMethodRef.value', 'text'),
    ('DepositLineDetail.CheckNum',               'text'),
    ('LinkedTxn.0.TxnId',                        'text'),
    ('LinkedTxn.0.TxnType',                      'text')
] %}

{{ qb_lines_staging('deposits', 'deposit_id', fields) }}
