{#-
  Business seconds from a fixed Monday (2000-01-03) to a local timestamp, under the
  `vobiz_business_hours` var: whole weeks, the business days before it in its week, and its own
  day's open seconds up to it. The business seconds between two times are the difference of
  theirs: arithmetic on each row, no calendar to join (a reply that took months costs what one
  that took minutes does).
-#}
{% macro vobiz_business_seconds_since_epoch(local_time) -%}
    {%- set hours = var('vobiz_business_hours') -%}
    {%- set days = hours['days'] | map('int') | list -%}
    {%- set opens, closes = hours['start_hour'] * 3600, hours['end_hour'] * 3600 -%}
    {%- set daily = [closes - opens, 0] | max -%}
    {%- set local_time = '(' ~ local_time ~ ')' -%}
    {%- set day = '(' ~ dbt.date_trunc('day', local_time) ~ ')' -%}
    {%- set days_since = dbt.datediff("cast('2000-01-03' as " ~ dbt.type_timestamp() ~ ")", day, 'day') -%}
    {#- The time of day from its parts, not datediff(day, time): on PostgreSQL that expands to
        date arithmetic on both (a third of vobiz__response_times' time on the models benchmark). -#}
    {%- set seconds_in_day = "(date_part('hour', " ~ local_time ~ ") * 3600 + date_part('minute', " ~ local_time
        ~ ") * 60 + floor(date_part('second', " ~ local_time ~ ")))" -%}
    (
        cast(floor(cast({{ days_since }} as {{ vobiz_type_double() }}) / 7) as {{ dbt.type_bigint() }})
            * {{ days | length * daily }}
        + case {{ vobiz_iso_weekday(day) }}
            {%- for weekday in range(1, 8) %}
            when {{ weekday }} then {{ (days | select('lt', weekday) | list | length) * daily }}
            {%- endfor %}
        end
        + case
            when {{ vobiz_iso_weekday(day) }} in ({{ days | join(', ') }})
            then
                case
                    when {{ seconds_in_day }} <= {{ opens }} then 0
                    when {{ seconds_in_day }} >= {{ closes }} then {{ daily }}
                    else {{ seconds_in_day }} - {{ opens }}
                end
            else 0
        end
    )
{%- endmacro %}
