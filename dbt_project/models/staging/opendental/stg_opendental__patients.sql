-- Open Dental patients: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, pat_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (PatNum -> pat_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('PatNum',              'int'),
    ('LName',               'text'),
    ('FName',               'text'),
    ('MiddleI',             'text'),
    ('Preferred',           'text'),
    ('PatStatus',           'text'),
    ('Gender',              'text'),
    ('Position',            'text'),
    ('Birthdate',           'date'),
    ('Address',             'text'),
    ('Address2',            'text'),
    ('City',                'text'),
    ('State',               'text'),
    ('Zip',                 'text'),
    ('HmPhone',             'text'),
    ('WkPhone',             'text'),
    ('WirelessPhone',       'text'),
    ('Guarantor',           'int'),
    ('Email',               'text'),
    ('EstBalance',          'money'),
    ('BalTotal',            'money'),
    ('PriProv',             'int'),
    ('SecProv',             'int'),
    ('BillingType',         'text'),
    ('ChartNumber',         'text'),
    ('DateFirstVisit',      'date'),
    ('ClinicNum',           'int'),
    ('PreferConfirmMethod', 'text'),
    ('PreferContactMethod', 'text'),
    ('PreferRecallMethod',  'text'),
    ('Language',            'text'),
    ('TxtMsgOk',            'text'),
    ('DateTStamp',          'datetime'),
    ('SuperFamily',         'int'),
    ('SecDateEntry',        'date')
] %}

with source as (

    select
        *,
        -- the raw text of every field above, parsing the JSON once per row
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', 'patients') }}

),

parsed as (

    select
        _connection_id as connection_id,
        {{- od_parse_fields(fields, '_raw') }},
        _source_timezone as source_timezone,
        _load_id,
        _extracted_at,
        _batch_seq,
        _row_seq
    from source

),

deduplicated as (

    select *
    from parsed
    qualify row_number() over (
        partition by connection_id, pat_num
        order by {{ od_latest_version_order('date_t_stamp') }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
