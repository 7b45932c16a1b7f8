{#-
  The condition of a row that breaks one of `expression` (a string or a list: a row's invariants),
  for the data tests expression_is_true, primary_key and unique_combination. As separate tests
  would, an expression whose result is null is no failure.
-#}
{% macro vobiz_breaks(expression) -%}
    {%- set expressions = [expression] if expression is string else expression -%}
    not (
    {%- for each in expressions %}
        ({{ each }}){{ ' and' if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}
