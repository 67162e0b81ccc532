{#
    Parsing rules and the shared model body for Stripe API objects (the raw JSON object text in
    the landing zone's `_record` column).

    Wire format (Stripe API): ids are prefixed strings (ch_, re_, dp_, txn_, po_); amounts are
    integers in the currency's minor unit (cents for usd); times are Unix seconds (UTC);
    booleans are JSON true/false; nested objects (metadata, payment_method_details) hold
    string values.

    A staging model declares its fields once, as (JSON path, wire type):

        {%- set fields = [('id', 'text'), ('amount', 'minor'), ('created', 'epoch'),
                          ('metadata.payment_type', 'text'), ...] %}
        {{ stripe_staging('charges', fields) }}

    Column name = the path with "." -> "_" (Stripe's names are already snake_case):
    metadata.payment_type -> metadata_payment_type. Types: text, int, bool, minor (minor units
    -> DECIMAL(18,2) in major units, zero-decimal currencies such as jpy unchanged), epoch
    (Unix seconds -> TIMESTAMP WITH TIME ZONE).

    Casts are strict: a value that does not parse fails the build (naming the model) instead of
    turning into NULL. Records the extractor could not validate are in stg_landing__quarantine.
#}

{#- Currencies Stripe sends without minor units (docs.stripe.com/currencies#zero-decimal). -#}
{% macro stripe_zero_decimal_currencies() -%}
    ('bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf')
{%- endmacro %}

{% macro stripe_json_path(path) -%}
    '$.{% for part in path.split('.') %}"{{ part }}"{% if not loop.last %}.{% endif %}{% endfor %}'
{%- endmacro %}

{% macro stripe_column_name(path) -%}
    {{- path.replace('.', '_') -}}
{%- endmacro %}

{#- An amount in minor units as DECIMAL(18,2) in major units (12345 usd -> 123.45). -#}
{% macro stripe_minor(raw, currency) -%}
    cast(cast(nullif(trim({{ raw }}), '') as decimal(18, 0))
        * case when lower({{ currency }}) in {{ stripe_zero_decimal_currencies() }} then 1 else 0.01 end
        as decimal(18, 2))
{%- endmacro %}

{#- Unix seconds as TIMESTAMP WITH TIME ZONE. -#}
{% macro stripe_epoch(raw) -%}
    to_timestamp(cast(nullif(trim({{ raw }}), '') as bigint))
{%- endmacro %}

{% macro stripe_parse(raw, type, currency='_currency') -%}
    {%- if type == 'text' -%}{{ raw }}
    {%- elif type == 'int' -%}cast(nullif(trim({{ raw }}), '') as bigint)
    {%- elif type == 'bool' -%}cast(nullif(trim({{ raw }}), '') as boolean)
    {%- elif type == 'minor' -%}{{ stripe_minor(raw, currency) }}
    {%- elif type == 'epoch' -%}{{ stripe_epoch(raw) }}
    {%- else -%}{{ exceptions.raise_compiler_error("stripe_parse: unknown type '" ~ type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The raw texts of many fields as one VARCHAR[] (the JSON is parsed once per row). -#}
{% macro stripe_extract_fields(fields, record='_record') -%}
    json_extract_string({{ record }}, [
        {%- for field in fields %}{{ stripe_json_path(field[0]) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ])
{%- endmacro %}

{% macro stripe_parse_fields(fields, raw_list='_raw') -%}
    {%- for field in fields %}
        {{ stripe_parse(raw_list ~ '[' ~ loop.index ~ ']', field[1]) }} as {{ stripe_column_name(field[0]) }}{% if not loop.last %},{% endif %}
    {%- endfor -%}
{%- endmacro %}

{#
    The body every Stripe staging model shares:
      source        landed records, the listed fields' raw texts pulled with one JSON parse;
      parsed        typed columns (+ `extra` SQL expressions, e.g. a key from _record_key) and
                    lineage columns;
      deduplicated  the latest version per (connection_id, keys): Stripe objects carry no
                    "updated" stamp, so the newest extraction wins (a payout re-read after it
                    was paid replaces the in_transit version).
#}
{% macro stripe_staging(entity, fields, keys=['id'], extra=[]) %}
with source as (

    select
        *,
        {{ stripe_extract_fields(fields) }} as _raw,
        json_extract_string(_record, '$.currency') as _currency
    from {{ source('stripe', entity) }}

),

parsed as (

    select
        _connection_id as connection_id,
        {%- for expression in extra %}
        {{ expression }},
        {%- endfor %}
        {{- stripe_parse_fields(fields, '_raw') }},
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
        partition by connection_id, {{ keys | join(', ') }}
        order by _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
{% endmacro %}
