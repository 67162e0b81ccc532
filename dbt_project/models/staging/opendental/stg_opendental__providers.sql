-- Open Dental providers: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, prov_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (ProvNum -> prov_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('ProvNum',        'int'),
    ('Abbr',           'text'),
    ('LName',          'text'),
    ('FName',          'text'),
    ('Suffix',         'text'),
    ('Specialty',      'int'),
    ('IsSecondary',    'bool'),
    ('IsHidden',       'bool'),
    ('NationalProvID', 'text'),
    ('DateTStamp',     'datetime'),
    ('IsNotPerson',    'bool'),
    ('ProvStatus',     'text')
] %}

with source as (

    select
        *,
        -- the raw text of every field above, parsing the JSON once per row
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', 'providers') }}

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
        partition by connection_id, prov_num
        order by {{ od_latest_version_order('date_t_stamp') }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
