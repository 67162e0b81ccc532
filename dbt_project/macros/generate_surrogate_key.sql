{#
    Hashed surrogate key over a list of columns/expressions, same output as
    dbt_utils.generate_surrogate_key: md5 of the values cast to text, joined with '-',
    with NULL replaced by a fixed token (so (NULL, 'a') and ('', 'a') hash differently).

    Usage: {{ generate_surrogate_key(['connection_id', 'pat_num']) }} as patient_key
#}
{% macro generate_surrogate_key(field_list) -%}
    {%- if field_list is string or field_list | length == 0 -%}
        {{ exceptions.raise_compiler_error("generate_surrogate_key expects a non-empty list of columns") }}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for field in field_list -%}
        {%- do parts.append("coalesce(cast(" ~ field ~ " as varchar), '_dbt_utils_surrogate_key_null_')") -%}
        {%- if not loop.last -%}{%- do parts.append("'-'") -%}{%- endif -%}
    {%- endfor -%}
    md5(cast(concat({{ parts | join(', ') }}) as varchar))
{%- endmacro %}
