{#
    Parsing rules for Open Dental API records (the raw JSON object text in the landing zone's
    `_record` column). Every staging model uses these, so each wire-format rule lives in one place.

    Wire format (Open Dental REST API): ids as JSON numbers (payments.ClinicNum as a string);
    money as a number or a string (payments.PayAmt "339"); booleans as the strings "true"/"false";
    enums as text names; dates "yyyy-MM-dd" and datetimes "yyyy-MM-dd HH:mm:ss" in office-local
    time, with 0001-01-01 meaning "none"; empty text "".

    A staging model declares its API fields once, in API order, with their wire type:

        {%- set fields = [('PatNum', 'int'), ('LName', 'text'), ('Birthdate', 'date'), ...] %}
        ... {{ od_extract_fields(fields) }} as _raw ...        -- parse the JSON once per row
        ... {{ od_parse_fields(fields, '_raw') }} ...           -- typed, snake_case columns

    Types: int, money, bool, date, datetime, text. The value macros (od_int, od_money, od_bool,
    od_date, od_datetime, od_text) take a SQL expression holding the field's raw text.

    The casts are strict on purpose: a value that does not parse fails the build (naming the
    model) instead of silently turning into NULL. Records the extractor could not validate are
    in the quarantine (stg_landing__quarantine).
#}


{#- ---------------------------------------------------------------- JSON field access -#}

{#- JSON path of a top-level key, quoted so names like Mode_ are safe. -#}
{% macro od_json_path(field) -%}
    '$."{{ field }}"'
{%- endmacro %}

{#- Raw text of one top-level field: JSON strings unquoted, numbers/booleans as their literal
    text, NULL when the field is missing or JSON null. For ad-hoc use; models use od_extract_fields. -#}
{% macro od_field(field, record='_record') -%}
    json_extract_string({{ record }}, {{ od_json_path(field) }})
{%- endmacro %}

{#- Raw text of many fields at once, as a VARCHAR[] in the order of `fields` (1-based):
    DuckDB parses the JSON once per row instead of once per field (~10x faster). -#}
{% macro od_extract_fields(fields, record='_record') -%}
    json_extract_string({{ record }}, [
        {%- for field in fields %}{{ od_json_path(field[0]) }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ])
{%- endmacro %}


{#- ---------------------------------------------------------------- column names -#}

{#- Column name of an API field. Mechanical: "_" between a lowercase letter/digit and an
    uppercase letter, and between an uppercase letter and an uppercase+lowercase pair; lowercase;
    trailing "_" dropped (PatNum -> pat_num, DateTStamp -> date_t_stamp, NationalProvID ->
    national_prov_id, IsRecurringCC -> is_recurring_cc, Mode_ -> mode). -#}
{% macro od_snake_case(field) -%}
    {{- modules.re.sub('(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', field).lower().rstrip('_') -}}
{%- endmacro %}

{#- Column names of a field list. A derived lowercase API field (confirmed, payType, adjType,
    commType, category) whose name would collide with its PascalCase twin gets the suffix
    `_name` (payType -> pay_type_name, next to PayType -> pay_type); provAbbr has no twin and
    stays prov_abbr. -#}
{% macro od_column_names(fields) -%}
    {%- set plain = [] -%}
    {%- for field in fields -%}{%- do plain.append(od_snake_case(field[0])) -%}{%- endfor -%}
    {%- set names = [] -%}
    {%- for field in fields -%}
        {%- set name = plain[loop.index0] -%}
        {%- if field[0][0] is lower and plain.count(name) > 1 -%}
            {%- set name = name ~ '_name' -%}
        {%- endif -%}
        {%- do names.append(name) -%}
    {%- endfor -%}
    {{- return(names) -}}
{%- endmacro %}


{#- ---------------------------------------------------------------- value parsing -#}

{#- Text and enum names, kept exactly as sent ("" stays ""). -#}
{% macro od_text(raw) -%}
    {{ raw }}
{%- endmacro %}

{#- Ids, foreign keys (0 = "none" in Open Dental, kept as 0) and other integers. Accepts a JSON
    number or a numeric string ("0"). -#}
{% macro od_int(raw) -%}
    cast(nullif(trim({{ raw }}), '') as bigint)
{%- endmacro %}

{#- Money as DECIMAL(14,2), whether sent as a JSON number (12.5) or a string ("339"). Goes
    through the text form, so no binary-float error; extra decimals round half away from zero. -#}
{% macro od_money(raw) -%}
    cast(nullif(trim({{ raw }}), '') as decimal(14, 2))
{%- endmacro %}

{#- Booleans: the API sends the strings "true"/"false" (a JSON true/false also works). -#}
{% macro od_bool(raw) -%}
    cast(nullif(trim({{ raw }}), '') as boolean)
{%- endmacro %}

{#- Dates "yyyy-MM-dd"; the sentinel 0001-01-01 (Open Dental's "none") and "" become NULL. -#}
{% macro od_date(raw) -%}
    cast(case when {{ raw }} not like '0001-01-01%' then nullif(trim({{ raw }}), '') end as date)
{%- endmacro %}

{#- Datetimes "yyyy-MM-dd HH:mm:ss" as TIMESTAMP in the office's local time (no time zone; the
    office's IANA zone is in source_timezone). 0001-01-01 00:00:00 and "" become NULL. -#}
{% macro od_datetime(raw) -%}
    cast(case when {{ raw }} not like '0001-01-01%' then nullif(trim({{ raw }}), '') end as timestamp)
{%- endmacro %}

{#- Dispatch on a declared wire type. -#}
{% macro od_parse(raw, type) -%}
    {%- if type == 'int' -%}{{ od_int(raw) }}
    {%- elif type == 'money' -%}{{ od_money(raw) }}
    {%- elif type == 'bool' -%}{{ od_bool(raw) }}
    {%- elif type == 'date' -%}{{ od_date(raw) }}
    {%- elif type == 'datetime' -%}{{ od_datetime(raw) }}
    {%- elif type == 'text' -%}{{ od_text(raw) }}
    {%- else -%}{{ exceptions.raise_compiler_error("od_parse: unknown Open Dental type '" ~ type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The select-list of typed columns for a field list whose raw texts are in the VARCHAR[]
    `raw_list` (from od_extract_fields), in the same order. -#}
{% macro od_parse_fields(fields, raw_list='_raw') -%}
    {%- set names = od_column_names(fields) -%}
    {%- for field in fields %}
        {{ od_parse(raw_list ~ '[' ~ loop.index ~ ']', field[1]) }} as {{ names[loop.index0] }}{% if not loop.last %},{% endif %}
    {%- endfor -%}
{%- endmacro %}


{#- ---------------------------------------------------------------- versions -#}

{#- ORDER BY list that puts the latest version of a record first: the record's own change stamp
    (NULL last: sentinel, or an entity without one), then the newest extraction, then the latest
    position within it. Used as: qualify row_number() over (partition by connection_id, <pk>
    order by {{ od_latest_version_order('date_t_stamp') }}) = 1 -#}
{% macro od_latest_version_order(change_stamp=none) -%}
    {%- if change_stamp is not none -%}{{ change_stamp }} desc nulls last, {% endif -%}
    _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc
{%- endmacro %}
