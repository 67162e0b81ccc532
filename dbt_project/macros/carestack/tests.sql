{#
    Fails for every row where `expression` is not true (NULL counts as not true). The expression
    is evaluated in a select list, so it may use window functions.

    data_tests:
      - carestack_expression_is_true:
          arguments:
            expression: "summary is null or duration > 20"
#}
{% test carestack_expression_is_true(model, expression) %}
select *
from (
    select *, ({{ expression }}) as _expression_holds
    from {{ model }}
) checked
where not coalesce(_expression_holds, false)
{% endtest %}
