-- QuickBooks journal entry lines: the `Line` array of each entry's latest version, one row per line.
-- Grain: one row per (connection_id, journal_entry_id, line_index). Amounts are positive; the
-- side is journal_entry_line_detail_posting_type (Debit | Credit).

{%- set fields = [
    ('Id',                                            'text'),
    ('Description',                                   'text'),
    ('Amount',                                        'money'),
    ('DetailType',                                    'text'),
    ('JournalEntryLineDetail.PostingType',            'text'),
    ('JournalEntryLineDetail.AccountRef.value',       'text'),
    ('JournalEntryLineDetail.AccountRef.name',        'text'),
    ('JournalEntryLineDetail.ClassRef.value',         'text'),
    ('JournalEntryLineDetail.ClassRef.name',          'text'),
    ('JournalEntryLineDetail.DepartmentRef.value',    'text'),
    ('JournalEntryLineDetail.DepartmentRef.name',     'text'),
    ('JournalEntryLineDetail.Entity.Type',            'text'),
    ('JournalEntryLineDetail.Entity.EntityRef.value', 'text')
] %}

{{ qb_lines_staging('journal_entries', 'journal_entry_id', fields) }}
