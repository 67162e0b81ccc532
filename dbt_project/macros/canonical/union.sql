{#
    The body of a canonical union model int_<entity>: every registered vendor adapter
    (canonical_adapters()) projected onto the entity's canonical columns (canonical_columns()),
    cast to the canonical types, stacked, with `source_system` and the surrogate keys added.

    Usage (models/intermediate/canonical/int_<entity>.sql):   {{ canonical_union('locations') }}

    An adapter that lacks a canonical column fails the build at the cast, naming the column.
    Derived columns come out as typed NULLs in their place, for the model to fill in
    (`select * replace (...)`). An entity that no vendor feeds yet is an empty, typed relation,
    so marts can be built on it before its first vendor lands.
#}
{% macro canonical_union(entity) %}
    {%- set columns = canonical_columns(entity) -%}
    {%- set derived = canonical_derived_columns(entity) -%}
    {%- set vendors = [] -%}
    {%- for vendor, entities in canonical_adapters().items() if entity in entities -%}
        {%- do vendors.append(vendor) -%}
    {%- endfor -%}

    {%- if vendors | length == 0 %}
-- No vendor feeds this entity yet (canonical_adapters()): an empty relation with the canonical types.
select
    {%- for name, type in columns %}
    cast(null as {{ 'varchar' if type.startswith('key:') else type }}) as {{ name }}{% if not loop.last %},{% endif %}
    {%- endfor %}
where false
    {%- else %}
with
    {%- for vendor in vendors %}

adapter_{{ vendor }} as (

    select
        '{{ vendor }}' as source_system
        {%- for name, type in columns if not type.startswith('key:') and name != 'source_system' and name not in derived %},
        cast({{ name }} as {{ type }}) as {{ name }}
        {%- endfor %}
    from {{ ref('int_' ~ entity ~ '__' ~ vendor) }}

),
    {%- endfor %}

unioned as (
    {%- for vendor in vendors %}

    select * from adapter_{{ vendor }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

select
    {%- for name, type in columns %}
    {%- if type.startswith('key:') %}
    {{ canonical_key(type[4:]) }} as {{ name }}
    {%- elif name in derived %}
    cast(null as {{ type }}) as {{ name }}
    {%- else %}
    {{ name }}
    {%- endif %}{% if not loop.last %},{% endif %}
    {%- endfor %}
from unioned
    {%- endif %}
{% endmacro %}


{#- The stable surrogate key of a native id within its source system and connection; NULL when
    the id is NULL (an absent reference), never a hash of "nothing". -#}
{% macro canonical_key(source_id_column) -%}
    case when {{ source_id_column }} is not null
        then {{ generate_surrogate_key(['source_system', 'connection_id', source_id_column]) }}
    end
{%- endmacro %}
