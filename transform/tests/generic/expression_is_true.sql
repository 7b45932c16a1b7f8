{#-
  Every row makes `expression` true (dbt_utils' expression_is_true, without the hub): the rows where
  it is not. `expression` may be a list: a row's invariants checked in one scan, one test node, the
  rows failing any of them (as separate tests would, a null result is no failure).
-#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where {{ vobiz_breaks(expression) }}
{% endtest %}
