{#-
  The column identifies the model's rows: never null, never twice (dbt's not_null and unique in one
  scan). With `expression` (as expression_is_true's), every row must also make it true: a model's
  key and its rows' invariants in one test node (dbt spends 20-70 ms on each node, however small
  its query); `failure` says which a failing row breaks.
-#}
{% test primary_key(model, column_name, expression=none) %}
select {{ column_name }}, 'key null or repeated' as failure
from {{ model }}
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null
{%- if expression is not none %}
union all
select {{ column_name }}, 'expression not true' as failure
from {{ model }}
where {{ vobiz_breaks(expression) }}
{%- endif %}
{% endtest %}
