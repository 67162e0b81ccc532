{#
    Parsing rules and the shared body of the Twilio staging models.

    Wire format (Twilio REST API 2010-04-01): field names are already snake_case and become the
    column names unchanged (`from` and `to` included: quote them); times are RFC 2822 in UTC
    ("Tue, 03 Nov 2026 16:00:00 +0000"); `duration`, `queue_time`, `num_segments`, `num_media`
    are digit strings, empty or null when not known yet; `price` is a signed decimal string,
    null until Twilio has priced the record; `error_code` is a JSON number or null.

    A staging model declares its API fields once, in API order, with their wire type:

        {%- set fields = [('sid', 'text'), ('start_time', 'time'), ('duration', 'count'), ...] %}
        {{ tw_staging('calls', fields) }}

    Types: text, count, time, price. The casts are strict on purpose: a value that does not
    parse fails the build (naming the model) instead of turning into NULL; the extractor
    quarantines records whose fields break these rules (stg_landing__quarantine).
#}

{#- Raw text of many fields, as a VARCHAR[] in the order of `fields` (1-based): one JSON parse per row. -#}
{% macro tw_extract_fields(fields, record='_record') -%}
    json_extract_string({{ record }}, [
        {%- for field in fields %}'$."{{ field[0] }}"'{% if not loop.last %}, {% endif %}{% endfor -%}
    ])
{%- endmacro %}

{#- Text kept exactly as sent. -#}
{% macro tw_text(raw) -%}
    {{ raw }}
{%- endmacro %}

{#- Seconds and counts sent as digit strings ("" or null = not known yet). -#}
{% macro tw_count(raw) -%}
    cast(nullif(trim({{ raw }}), '') as bigint)
{%- endmacro %}

{#- RFC 2822 times ("Tue, 03 Nov 2026 16:00:00 +0000") as TIMESTAMPTZ; "" or null = none. -#}
{% macro tw_time(raw) -%}
    strptime(nullif(trim({{ raw }}), ''), '%a, %d %b %Y %H:%M:%S %z')
{%- endmacro %}

{#- Prices: signed decimal strings with up to 5 decimals ("-0.00850"); null until priced. -#}
{% macro tw_price(raw) -%}
    cast(nullif(trim({{ raw }}), '') as decimal(12, 5))
{%- endmacro %}

{% macro tw_parse(raw, type) -%}
    {%- if type == 'text' -%}{{ tw_text(raw) }}
    {%- elif type == 'count' -%}{{ tw_count(raw) }}
    {%- elif type == 'time' -%}{{ tw_time(raw) }}
    {%- elif type == 'price' -%}{{ tw_price(raw) }}
    {%- else -%}{{ exceptions.raise_compiler_error("tw_parse: unknown Twilio type '" ~ type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#
    The body every Twilio staging model shares:
      source        the landed batches, every listed field's raw text pulled from `_record`;
      parsed        typed columns named as the API names them + lineage columns;
      deduplicated  the latest version per (connection_id, sid): the highest date_updated
                    (a call rings, connects, ends and is priced; a text is queued, sent,
                    delivered), then the newest extraction.
#}
{% macro tw_staging(entity, fields) %}
with source as (

    select
        *,
        {{ tw_extract_fields(fields) }} as _raw
    from {{ source('twilio', entity) }}

),

parsed as (

    select
        _connection_id as connection_id,
        {%- for field in fields %}
        {{ tw_parse('_raw[' ~ loop.index ~ ']', field[1]) }} as "{{ field[0] }}",
        {%- endfor %}
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
        partition by connection_id, sid
        order by date_updated desc nulls last, _extracted_at desc, _load_id desc,
            _batch_seq desc, _row_seq desc
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
{% endmacro %}
