{#-
  For an incremental mart that copies a dimension's values into its rows (a channel's number,
  a contact's name): the keys whose values in the rows already built differ from the
  dimension's now, or that the dimension no longer holds (a deleted channel).

  `built` is the built model, or a CTE of its rows grouped (vobiz__messages reads them once for all
  its dimensions); `columns` maps its columns to the dimension's. Read from the built rows'
  distinct values (a few thousand at most), not by joining every built row: the mart then
  takes the rows of these keys again by a key lookup. Each key once (a mart may join to them).
-#}
{% macro vobiz_changed_keys(built, key, dimension, columns) -%}
    select distinct built.{{ key }}
    from (
        select distinct {{ key }}, {{ columns.keys() | join(', ') }} from {{ built }}
    ) as built
    left join {{ dimension }} as current_rows on built.{{ key }} = current_rows.{{ key }}
    where
    {%- for mine, theirs in columns.items() %}
        {{ 'or ' if not loop.first }}built.{{ mine }} is distinct from current_rows.{{ theirs }}
    {%- endfor %}
{%- endmacro %}
