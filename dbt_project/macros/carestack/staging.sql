{#
    Parsing rules and the shared model body for CareStack API records (the raw JSON object text in
    the landing zone's `_record` column). Every CareStack staging model uses these, so each
    wire-format rule lives in one place.

    Wire format (partner API, not public; see vendor-apis.md section 2): reference lists use
    PascalCase fields, sync feeds camelCase; ids are JSON numbers; booleans JSON true/false; "no
    value" is JSON null; change stamps (lastModifiedOn, createdOn, startTime) are ISO-8601 instants
    ("2026-11-01T14:59:59Z"; one without an offset is UTC); appointment dateTime is the location's
    wall-clock time without an offset; arrays (providerIds) are JSON arrays.

    A staging model declares its API fields once, in API order, with their wire type:

        {%- set fields = [('id', 'int'), ('lastModifiedOn', 'instant'), ...] %}
        {{ cs_staging('appointments', fields, key='id', change_stamp='last_modified_on') }}

    Types: int, text, bool, date, local (wall-clock datetime -> TIMESTAMP), instant (-> TIMESTAMP
    WITH TIME ZONE), int_list (-> BIGINT[]), decimal (-> DECIMAL(6,3)). Casts are strict: a value
    that does not parse fails the build, naming the model. Records the extractor rejected are in
    stg_landing__quarantine.
#}


{#- Column name of an API field, mechanically: "_" between a lowercase letter/digit and an
    uppercase letter, and between an uppercase letter and an uppercase+lowercase pair; lowercase
    (lastModifiedOn -> last_modified_on, LocationId -> location_id, NPI -> npi,
    AddressLine1 -> address_line1). -#}
{% macro cs_snake_case(field) -%}
    {{- modules.re.sub('(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', field).lower() -}}
{%- endmacro %}

{#- Raw text of many top-level fields at once, as a VARCHAR[] in the order of `fields`
    (1-based): one JSON parse per row. Arrays come back as their JSON text. -#}
{% macro cs_extract_fields(fields, record='_record') -%}
    json_extract_string({{ record }}, [
        {%- for field in fields %}'$."{{ field[0] }}"'{% if not loop.last %}, {% endif %}{% endfor -%}
    ])
{%- endmacro %}

{#- An ISO-8601 instant; text without an offset is UTC (never the session's time zone). -#}
{% macro cs_instant(raw) -%}
    cast(case
        when regexp_matches(trim({{ raw }}), '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$') then trim({{ raw }})
        else nullif(trim({{ raw }}), '') || '+00:00'
    end as timestamptz)
{%- endmacro %}

{% macro cs_parse(raw, type) -%}
    {%- if type == 'int' -%}cast(nullif(trim({{ raw }}), '') as bigint)
    {%- elif type == 'text' -%}{{ raw }}
    {%- elif type == 'bool' -%}cast({{ raw }} as boolean)
    {%- elif type == 'date' -%}cast(nullif(trim({{ raw }}), '') as date)
    {%- elif type == 'local' -%}cast(nullif(trim({{ raw }}), '') as timestamp)
    {%- elif type == 'instant' -%}{{ cs_instant(raw) }}
    {%- elif type == 'int_list' -%}cast(from_json({{ raw }}, '["BIGINT"]') as bigint[])
    {%- elif type == 'decimal' -%}cast(nullif(trim({{ raw }}), '') as decimal(6, 3))
    {%- else -%}{{ exceptions.raise_compiler_error("cs_parse: unknown CareStack type '" ~ type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The typed, snake_case select-list of `fields`, whose raw texts are in the VARCHAR[] `raw_list`. -#}
{% macro cs_parse_fields(fields, raw_list='_raw') -%}
    {%- for field in fields %}
        {{ cs_parse(raw_list ~ '[' ~ loop.index ~ ']', field[1]) }} as {{ cs_snake_case(field[0]) }}{% if not loop.last %},{% endif %}
    {%- endfor -%}
{%- endmacro %}

{#
    The body every CareStack staging model shares:
      source        the landed batches, every listed field's raw text pulled from `_record`;
      parsed        typed, snake_case columns + lineage columns;
      deduplicated  the latest version per (connection_id, key): the highest change stamp (sync
                    feeds), then the newest extraction, load, batch and row. With
                    latest_load_only, only the rows of each connection's newest load are kept
                    (an evaluation re-made whole every run, such as location matches).
#}
{% macro cs_staging(entity, fields, key, change_stamp=none, latest_load_only=false) %}
with source as (

    select
        *,
        {{ cs_extract_fields(fields) }} as _raw
    from {{ source('carestack', entity) }}
    {%- if latest_load_only %}
    qualify _load_id = max(_load_id) over (partition by _connection_id)
    {%- endif %}

),

parsed as (

    select
        _connection_id as connection_id,
        {{- cs_parse_fields(fields, '_raw') }},
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
        order by
            {% if change_stamp is not none -%}{{ change_stamp }} desc nulls last, {% endif -%}
            _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
{% endmacro %}
