{#- No two rows share these columns' values (dbt_utils' unique_combination_of_columns, without the hub). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
