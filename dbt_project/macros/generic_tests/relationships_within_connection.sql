{#
    Like dbt's `relationships`, but keys are only unique within one source connection (two
    offices both have PatNum 1), so the parent row must exist in the SAME connection.

    Open Dental uses 0 for "no reference" (ProvHyg 0, ClinicNum 0, PayType 0 = income
    transfer): with zero_means_none (default) those rows are not checked. NULLs are never checked.

    Each failing row is one dangling (connection, value) with how many child rows point at it.

    Severity defaults to warn: entities are extracted one after another, so a child created
    between its parent's pass and its own (a new patient's first appointment) dangles until the
    next sync. That is timing, not bad data, and must not stop the build; the warning stays
    visible as a failed WARN asset check in Dagster.

    columns:
      - name: pat_num
        data_tests:
          - relationships_within_connection:
              arguments:
                to: ref('stg_opendental__patients')
                field: pat_num
#}
{% test relationships_within_connection(model, column_name, to, field, connection_field='connection_id', zero_means_none=true) %}
{{ config(severity='warn') }}
with child as (
    select
        {{ connection_field }} as connection_value,
        {{ column_name }} as ref_value
    from {{ model }}
    where {{ column_name }} is not null
    {%- if zero_means_none %}
      and {{ column_name }} <> 0
    {%- endif %}
),

parent as (
    select distinct
        {{ connection_field }} as connection_value,
        {{ field }} as ref_value
    from {{ to }}
)

select
    child.connection_value as {{ connection_field }},
    child.ref_value as {{ column_name }},
    count(*) as n_dangling
from child
left join parent
    on child.connection_value = parent.connection_value
    and child.ref_value = parent.ref_value
where parent.ref_value is null
group by 1, 2
{% endtest %}
