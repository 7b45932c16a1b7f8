{#-
  No two rows share these columns' values (dbt_utils' unique_combination_of_columns, without the
  hub). With `expression` (as expression_is_true's), every row must also make it true, in the same
  test node (as primary_key's); `failure` says which a failing row breaks.
-#}
{% test unique_combination(model, columns, expression=none) %}
select {{ columns | join(', ') }}, 'key repeated' as failure
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- if expression is not none %}
union all
select {{ columns | join(', ') }}, 'expression not true' as failure
from {{ model }}
where {{ vobiz_breaks(expression) }}
{%- endif %}
{% endtest %}
