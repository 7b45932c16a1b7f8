{#-
  Every row makes `expression` true (dbt_utils' expression_is_true, without the hub): the rows where
  it is not. `expression` may be a list: a row's invariants checked in one scan, one test node, the
  rows failing any of them (as separate tests would, a null result is no failure).
-#}
{% test expression_is_true(model, expression) %}
{%- set expressions = [expression] if expression is string else expression %}
select *
from {{ model }}
where not (
    {%- for each in expressions %}
    ({{ each }}){{ ' and' if not loop.last }}
    {%- endfor %}
)
{% endtest %}
