{#
    Parsing rules and the shared model bodies for QuickBooks Online entities (the raw JSON
    object text in the landing zone's `_record` column).

    Wire format (QBO API, minorversion 75): Id and SyncToken are strings ("145", "0"); amounts
    are JSON numbers (1151.8); dates "yyyy-MM-dd"; MetaData times ISO 8601 with the company's
    UTC offset ("2026-10-29T11:00:00-04:00"); references are objects {value, name}; a
    transaction's lines are the `Line` array.

    A model declares its fields once, as (JSON path, wire type):

        {%- set fields = [('Id', 'text'), ('MetaData.LastUpdatedTime', 'instant'),
                          ('DepositToAccountRef.value', 'text'), ...] %}

    Column name, the flattening rule: every path segment is snake_cased by the Open Dental rule
    ("_" between a lowercase letter/digit and an uppercase letter, and between an uppercase
    letter and an uppercase+lowercase pair; lowercase) and the segments are joined with "_":
    MetaData.LastUpdatedTime -> meta_data_last_updated_time, DepositToAccountRef.value ->
    deposit_to_account_ref_value, LinkedTxn.0.TxnId (first element of an array) ->
    linked_txn_0_txn_id. Types: text, int (SyncToken "3" -> 3), money (DECIMAL(14,2) from the
    number's text, no float error), bool, date, instant (TIMESTAMP WITH TIME ZONE).

    Versions: the latest per (connection_id, Id) is the highest MetaData.LastUpdatedTime, then
    the highest SyncToken (every write bumps it), then the newest extraction. Line models unnest
    the `Line` array of that latest version only, so lines an edit removed disappear.
#}

{% macro qb_json_path(path) -%}
    '$
    {%- for part in path.split('.') -%}
        {%- if part.isdigit() -%}[{{ part }}]{%- else -%}."{{ part }}"{%- endif -%}
    {%- endfor -%}'
{%- endmacro %}

{% macro qb_column_name(path) -%}
    {%- set parts = [] -%}
    {%- for part in path.split('.') -%}
        {%- do parts.append(modules.re.sub('(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', part).lower()) -%}
    {%- endfor -%}
    {{- parts | join('_') -}}
{%- endmacro %}

{% macro qb_parse(raw, type) -%}
    {%- if type == 'text' -%}{{ raw }}
    {%- elif type == 'int' -%}cast(nullif(trim({{ raw }}), '') as bigint)
    {%- elif type == 'money' -%}cast(nullif(trim({{ raw }}), '') as decimal(14, 2))
    {%- elif type == 'bool' -%}cast(nullif(trim({{ raw }}), '') as boolean)
    {%- elif type == 'date' -%}cast(nullif(trim({{ raw }}), '') as date)
    {%- elif type == 'instant' -%}cast(nullif(trim({{ raw }}), '') as timestamptz)
    {%- else -%}{{ exceptions.raise_compiler_error("qb_parse: unknown type '" ~ type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The raw texts of many fields as one VARCHAR[] (the JSON is parsed once per row). -#}
{% macro qb_extract_fields(fields, record='_record') -%}
    json_extract_string({{ record }}, [
        {%- for field in fields %}{{ qb_json_path(field[0]) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ])
{%- endmacro %}

{% macro qb_parse_fields(fields, raw_list='_raw') -%}
    {%- for field in fields %}
        {{ qb_parse(raw_list ~ '[' ~ loop.index ~ ']', field[1]) }} as {{ qb_column_name(field[0]) }}{% if not loop.last %},{% endif %}
    {%- endfor -%}
{%- endmacro %}

{#- ORDER BY putting the latest version of an entity first (read from the raw record). -#}
{% macro qb_latest_version_order() -%}
    cast(json_extract_string(_record, '$.MetaData.LastUpdatedTime') as timestamptz) desc nulls last,
    cast(json_extract_string(_record, '$.SyncToken') as bigint) desc nulls last,
    _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc
{%- endmacro %}

{#- The latest landed version of each entity, with its Id as _entity_id. -#}
{% macro qb_latest_versions(entity) %}
    select *, json_extract_string(_record, '$.Id') as _entity_id
    from {{ source('quickbooks', entity) }}
    qualify row_number() over (
        partition by _connection_id, json_extract_string(_record, '$.Id')
        order by {{ qb_latest_version_order() }}
    ) = 1
{% endmacro %}

{#- One row per entity: its fields, typed and renamed, plus lineage. -#}
{% macro qb_staging(entity, fields) %}
with latest as (
{{ qb_latest_versions(entity) }}
),

parsed as (

    select
        _connection_id as connection_id,
        {{- qb_parse_fields(fields, '_raw') }},
        _source_timezone as source_timezone,
        _load_id,
        _extracted_at
    from (select *, {{ qb_extract_fields(fields) }} as _raw from latest)

)

select * from parsed
{% endmacro %}

{#- One row per element of the latest version's `Line` array: the parent's Id as
    `parent_column`, the 1-based position as line_index, then the line's fields. -#}
{% macro qb_lines_staging(entity, parent_column, fields) %}
with latest as (
{{ qb_latest_versions(entity) }}
),

lines as (

    select
        *,
        unnest(_lines) as _line,
        generate_subscripts(_lines, 1) as line_index
    from (select *, cast(json_extract(_record, '$.Line') as json[]) as _lines from latest)

),

parsed as (

    select
        _connection_id as connection_id,
        _entity_id as {{ parent_column }},
        line_index,
        {{- qb_parse_fields(fields, '_raw') }},
        _source_timezone as source_timezone,
        _load_id,
        _extracted_at
    from (select *, {{ qb_extract_fields(fields, '_line') }} as _raw from lines)

)

select * from parsed
{% endmacro %}
