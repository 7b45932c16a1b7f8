{#- Every row makes `expression` true (dbt_utils' expression_is_true, without the hub): the rows where it is not. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
