-- QuickBooks departments ("Locations" in the UI): the latest version of each.
-- Grain: one row per (connection_id, id).

{%- set fields = [
    ('Id',                       'text'),
    ('SyncToken',                'int'),
    ('MetaData.CreateTime',      'instant'),
    ('MetaData.LastUpdatedTime', 'instant'),
    ('Name',                     'text'),
    ('SubDepartment',            'bool'),
    ('ParentRef.value',          'text'),
    ('FullyQualifiedName',       'text'),
    ('Active',                   'bool')
] %}

{{ qb_staging('departments', fields) }}
