{#-
  The funnel of sends (campaign recipients, template messages) by their status, one definition
  for every mart: sent counts delivered and read ones too, delivered counts read ones.
  `vobiz_send_funnel` is the aggregates (as sent, delivered, read_sends, failed), of rows that are
  one send each or, with `sends`, of rows that count that many sends (sends grouped beforehand);
  `vobiz_send_rates` the rates over the attempted sends (sent + failed) of those columns.
-#}
{% macro vobiz_send_funnel(status, sends='1') -%}
    sum(case when {{ status }} in ('sent', 'delivered', 'read') then {{ sends }} else 0 end) as sent,
    sum(case when {{ status }} in ('delivered', 'read') then {{ sends }} else 0 end) as delivered,
    sum(case when {{ status }} = 'read' then {{ sends }} else 0 end) as read_sends,
    sum(case when {{ status }} = 'failed' then {{ sends }} else 0 end) as failed
{%- endmacro %}

{% macro vobiz_send_rates(funnel) -%}
    {%- for rate, count in [('delivery_rate', 'delivered'), ('read_rate', 'read_sends'), ('failure_rate', 'failed')] %}
    cast({{ funnel }}.{{ count }} as {{ vobiz_type_double() }}) / nullif({{ funnel }}.sent + {{ funnel }}.failed, 0)
        as {{ rate }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
