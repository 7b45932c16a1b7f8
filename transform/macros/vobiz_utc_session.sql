{#-
  Every model's session in UTC (the project's pre-hook): a loader that writes `timestamptz`
  columns (or a warehouse whose session zone is not UTC) would otherwise have `cast(... as
  timestamp)` and `date_trunc('day', ...)` give local times, and a 20:00Z message land on the
  next day in Asia/Kolkata. Every time and day of the models is UTC.
-#}
{% macro vobiz_utc_session() -%}
    {{ return(adapter.dispatch('vobiz_utc_session', 'vobiz')()) }}
{%- endmacro %}

{% macro default__vobiz_utc_session() -%}
    set time zone 'UTC'
{%- endmacro %}

{% macro duckdb__vobiz_utc_session() -%}
    set TimeZone = 'UTC'
{%- endmacro %}

{% macro snowflake__vobiz_utc_session() -%}
    alter session set timezone = 'UTC'
{%- endmacro %}

{#- The UTC day of a timestamp, as a date. -#}
{% macro vobiz_date_day(column) -%}
    cast({{ dbt.date_trunc('day', column) }} as date)
{%- endmacro %}
