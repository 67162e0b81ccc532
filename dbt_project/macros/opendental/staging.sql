{#
    The body every Open Dental staging model shares:
      source        the landed batches, every listed field's raw text pulled from `_record`
                    with one JSON parse per row;
      parsed        typed, snake_case columns (rules in parsing.sql) + lineage columns;
      deduplicated  the latest version per (connection_id, key): highest change stamp, then
                    the newest extraction (entities without a stamp: newest extraction only).
#}
{% macro od_staging(entity, fields, key, change_stamp=none) %}
with source as (

    select
        *,
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', entity) }}

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
        partition by connection_id, {{ key }}
        order by {{ od_latest_version_order(change_stamp) }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
{% endmacro %}
