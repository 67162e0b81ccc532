-- Open Dental communication log entries: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, commlog_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (CommlogNum -> commlog_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('CommlogNum',     'int'),
    ('PatNum',         'int'),
    ('CommDateTime',   'datetime'),
    ('CommType',       'int'),
    ('commType',       'text'),
    ('Note',           'text'),
    ('Mode_',          'text'),
    ('SentOrReceived', 'text'),
    ('UserNum',        'int'),
    ('DateTStamp',     'datetime'),
    ('CommSource',     'text'),
    ('DateTEntry',     'datetime')
] %}

with source as (

    select
        *,
        -- the raw text of every field above, parsing the JSON once per row
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', 'commlogs') }}

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
        partition by connection_id, commlog_num
        order by {{ od_latest_version_order('date_t_stamp') }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
