{#
    The body every NexHealth staging model shares:
      source        the landed batches, every listed field's raw text pulled from `_record`
                    with one JSON parse per row;
      parsed        typed columns named by the one rule in parsing.sql + lineage columns;
      deduplicated  the latest version per (connection_id, key): highest updated_at, then the
                    newest extraction (entities without a change stamp: newest extraction only).
    NexHealth ids are unique within an institution, and a connection is one institution.
#}
{% macro nx_staging(entity, fields, key='id', change_stamp='updated_at') %}
with source as (

    select
        *,
        {{ nx_extract_fields(fields) }} as _raw
    from {{ source('nexhealth', entity) }}

),

parsed as (

    select
        _connection_id as connection_id,
        {{- nx_parse_fields(fields, '_raw') }},
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
        order by {{ nx_latest_version_order(change_stamp) }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
{% endmacro %}
