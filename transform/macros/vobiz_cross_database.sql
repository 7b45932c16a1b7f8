{#- A text field of a JSON object column (`content_json`): `key` may be a dotted path ("image.caption"). -#}
{% macro vobiz_json_text(column, key) -%}
    {{ return(adapter.dispatch('vobiz_json_text', 'vobiz')(column, key)) }}
{%- endmacro %}

{% macro default__vobiz_json_text(column, key) -%}
    ({{ column }} #>> '{{ "{" ~ key.split(".") | join(",") ~ "}" }}')
{%- endmacro %}

{% macro duckdb__vobiz_json_text(column, key) -%}
    json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro snowflake__vobiz_json_text(column, key) -%}
    {{ column }}:{{ key }}::varchar
{%- endmacro %}

{#- A JSON field's text when it is a string, number or boolean; null when it is an object or array. -#}
{% macro vobiz_json_scalar(column, key) -%}
    {{ return(adapter.dispatch('vobiz_json_scalar', 'vobiz')(column, key)) }}
{%- endmacro %}

{% macro default__vobiz_json_scalar(column, key) -%}
    case
        when jsonb_typeof(cast({{ column }} as jsonb) #> '{{ "{" ~ key.split(".") | join(",") ~ "}" }}')
            in ('string', 'number', 'boolean')
        then {{ vobiz_json_text(column, key) }}
    end
{%- endmacro %}

{% macro duckdb__vobiz_json_scalar(column, key) -%}
    case
        when json_type({{ column }}, '$.{{ key }}') not in ('OBJECT', 'ARRAY', 'NULL')
        then {{ vobiz_json_text(column, key) }}
    end
{%- endmacro %}

{% macro snowflake__vobiz_json_scalar(column, key) -%}
    case
        when not is_object({{ column }}:{{ key }}) and not is_array({{ column }}:{{ key }})
        then {{ vobiz_json_text(column, key) }}
    end
{%- endmacro %}

{#- A double-precision float: `dbt.type_float()`, except on DuckDB, where FLOAT is 4 bytes. -#}
{% macro vobiz_type_double() -%}
    {{ return(adapter.dispatch('vobiz_type_double', 'vobiz')()) }}
{%- endmacro %}

{% macro default__vobiz_type_double() -%}
    {{ dbt.type_float() }}
{%- endmacro %}

{% macro duckdb__vobiz_type_double() -%}
    double
{%- endmacro %}

{#- A UTC timestamp as the wall-clock time in `time_zone` (an IANA name). -#}
{% macro vobiz_local_time(column, time_zone) -%}
    {{ return(adapter.dispatch('vobiz_local_time', 'vobiz')(column, time_zone)) }}
{%- endmacro %}

{% macro default__vobiz_local_time(column, time_zone) -%}
    ((({{ column }}) at time zone 'UTC') at time zone '{{ time_zone }}')
{%- endmacro %}

{% macro snowflake__vobiz_local_time(column, time_zone) -%}
    convert_timezone('UTC', '{{ time_zone }}', {{ column }})
{%- endmacro %}

{#- The ISO weekday of a timestamp: 1 Monday .. 7 Sunday. -#}
{% macro vobiz_iso_weekday(column) -%}
    {{ return(adapter.dispatch('vobiz_iso_weekday', 'vobiz')(column)) }}
{%- endmacro %}

{% macro default__vobiz_iso_weekday(column) -%}
    cast(extract(isodow from {{ column }}) as {{ dbt.type_int() }})
{%- endmacro %}

{% macro snowflake__vobiz_iso_weekday(column) -%}
    dayofweekiso({{ column }})
{%- endmacro %}
