-- QuickBooks classes (one per location in this group): the latest version of each.
-- Grain: one row per (connection_id, id).

{%- set fields = [
    ('Id',                       'text'),
    ('SyncToken',                'int'),
    ('MetaData.CreateTime',      'instant'),
    ('MetaData.LastUpdatedTime', 'instant'),
    ('Name',                     'text'),
    ('SubClass',                 'bool'),
    ('ParentRef.value',          'text'),
    ('FullyQualifiedName',       'text'),
    ('Active',                   'bool')
] %}

{{ qb_staging('classes', fields) }}
