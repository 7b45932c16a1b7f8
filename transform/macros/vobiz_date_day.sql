{#- The UTC day of a timestamp, as a date: staging's times are UTC whatever the warehouse session's
    zone (dbt_project.yml's `sql_header` sets it to UTC in every model's statement). -#}
{% macro vobiz_date_day(column) -%}
    cast({{ dbt.date_trunc('day', column) }} as date)
{%- endmacro %}
