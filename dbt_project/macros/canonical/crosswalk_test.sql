{#
    Fails for every vendor value that its crosswalk seed does not list: one row per
    (source_system, vendor value) with how many rows carry it. Mapped values are never guessed,
    unmapped rows are never dropped: the model keeps them (e.g. canonical_status 'unmapped')
    and this test stops the build until someone adds the value to the crosswalk.

    dbt prints only a failing test's row count, so the failing values are also logged (status
    names, never patient data), e.g.:
      missing from appointment_status_crosswalk: opendental vendor_status 'None' (2 row(s) of
      int_appointments): add it to seeds/appointment_status_crosswalk.csv

    data_tests:
      - missing_from_crosswalk:
          name: appointment_status_missing_from_crosswalk
          arguments:
            crosswalk: ref('appointment_status_crosswalk')
            column_name: vendor_status
            count_name: n_appointments
#}
{% test missing_from_crosswalk(model, crosswalk, column_name, system_column='source_system', count_name='n_rows') %}
{%- set sql %}
select
    m.{{ system_column }} as {{ system_column }},
    m.{{ column_name }} as {{ column_name }},
    count(*) as {{ count_name }}
from {{ model }} as m
left join {{ crosswalk }} as c
    on m.{{ system_column }} = c.{{ system_column }}
    and m.{{ column_name }} = c.{{ column_name }}
where c.{{ column_name }} is null
group by 1, 2
{%- endset %}
{%- if execute and load_relation(model) is not none and load_relation(crosswalk) is not none %}
    {%- for row in run_query(sql ~ ' order by 1, 2').rows %}
        {{- log("missing from " ~ crosswalk.identifier ~ ": " ~ row[0] ~ " " ~ column_name ~ " "
                ~ ("NULL" if row[1] is none else "'" ~ row[1] ~ "'") ~ " (" ~ row[2] ~ " row(s) of "
                ~ model.identifier ~ "): add it to seeds/" ~ crosswalk.identifier ~ ".csv", info=True) -}}
    {%- endfor %}
{%- endif %}
{{ sql }}
{% endtest %}
