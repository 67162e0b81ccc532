{#
    Fails for every row whose column holds a time before the row's reference time (NULLs pass):
    a lead journey's stages never precede its enquiry.

    columns:
      - name: booked_at
        data_tests:
          - not_before:
              arguments:
                reference: enquiry_at
#}
{% test not_before(model, column_name, reference) %}
select *
from {{ model }}
where {{ column_name }} < {{ reference }}
{% endtest %}
