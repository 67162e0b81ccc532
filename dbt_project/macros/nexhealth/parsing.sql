{#
    Parsing rules for NexHealth API records (the raw JSON object text in the landing zone's
    `_record` column). Every NexHealth staging model uses these, so each wire rule lives in one place.

    Wire format (NexHealth Synchronizer API, v20240412): field names are already snake_case; ids
    are JSON integers; flags JSON booleans; times ISO-8601 in UTC ("2026-11-01T15:00:00.000Z");
    dates "YYYY-MM-DD"; money an object {"amount": "-12.50", "currency": "USD"} with the amount
    as a decimal string (payments are negative: they lower the balance); JSON null for "none".

    A staging model declares its API fields once, in API order, with their wire type:

        {%- set fields = [('id', 'int'), ('bio.date_of_birth', 'date'), ...] %}
        ... {{ nx_extract_fields(fields) }} as _raw ...       -- parse the JSON once per row
        ... {{ nx_parse_fields(fields, '_raw') }} ...          -- typed columns

    Column names (one rule): the API field name as it is; a field of a nested object is
    `<object>_<field>` (bio.date_of_birth -> bio_date_of_birth, payment_amount.amount ->
    payment_amount_amount). Arrays stay whole: a list of ids as BIGINT[] (`int_list`), anything
    else as JSON (`json`).

    Types: int, float, text, bool, timestamp (TIMESTAMP WITH TIME ZONE, the instant NexHealth
    sent), date, money (DECIMAL(14,2) from the amount string), int_list, json.

    The casts are strict on purpose: a value that does not parse fails the build (naming the
    model) instead of silently turning into NULL. Records the extractor could not validate are in
    the quarantine (stg_landing__quarantine).
#}


{#- JSON path of a field; "a.b" is field b of the nested object a. Keys quoted, so any name is safe. -#}
{% macro nx_json_path(field) -%}
    '${% for part in field.split('.') %}."{{ part }}"{% endfor %}'
{%- endmacro %}

{#- Raw text of many fields at once, as a VARCHAR[] in the order of `fields` (1-based): DuckDB
    parses the JSON once per row. Scalars come unquoted, arrays/objects as JSON text, a missing
    field or JSON null as NULL. -#}
{% macro nx_extract_fields(fields, record='_record') -%}
    json_extract_string({{ record }}, [
        {%- for field in fields %}{{ nx_json_path(field[0]) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ])
{%- endmacro %}

{#- Column name of an API field: nested object fields joined with "_". -#}
{% macro nx_column_name(field) -%}
    {{- field.replace('.', '_').lower() -}}
{%- endmacro %}


{#- ---------------------------------------------------------------- value parsing -#}

{% macro nx_parse(raw, type) -%}
    {%- if type == 'int' -%} cast({{ raw }} as bigint)
    {%- elif type == 'float' -%} cast({{ raw }} as double)
    {%- elif type == 'text' -%} {{ raw }}
    {%- elif type == 'bool' -%} cast({{ raw }} as boolean)
    {%- elif type == 'timestamp' -%} cast({{ raw }} as timestamp with time zone)
    {%- elif type == 'date' -%} cast({{ raw }} as date)
    {%- elif type == 'money' -%} cast({{ raw }} as decimal(14, 2))
    {%- elif type == 'int_list' -%} cast(cast({{ raw }} as json) as bigint[])
    {%- elif type == 'json' -%} cast({{ raw }} as json)
    {%- else -%}{{ exceptions.raise_compiler_error("nx_parse: unknown NexHealth type '" ~ type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The select-list of typed columns for a field list whose raw texts are in the VARCHAR[]
    `raw_list` (from nx_extract_fields), in the same order. -#}
{% macro nx_parse_fields(fields, raw_list='_raw') -%}
    {%- for field in fields %}
        {{ nx_parse(raw_list ~ '[' ~ loop.index ~ ']', field[1]) }} as {{ nx_column_name(field[0]) }}{% if not loop.last %},{% endif %}
    {%- endfor -%}
{%- endmacro %}


{#- ---------------------------------------------------------------- versions -#}

{#- ORDER BY list that puts the latest version of a record first: its updated_at (NULL last),
    then the newest extraction, then the latest position within it. -#}
{% macro nx_latest_version_order(change_stamp=none) -%}
    {%- if change_stamp is not none -%}{{ change_stamp }} desc nulls last, {% endif -%}
    _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc
{%- endmacro %}
