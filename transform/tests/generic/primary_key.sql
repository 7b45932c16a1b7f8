{#- The column identifies the model's rows: never null, never twice (dbt's not_null and unique in one scan). -#}
{% test primary_key(model, column_name) %}
select {{ column_name }}
from {{ model }}
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null
{% endtest %}
