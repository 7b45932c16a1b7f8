{#-
  One row per channel and UTC day with messages, conversations started or calls: the counts
  vobiz__channel_daily and vobiz__spend_daily share. A row whose time the tap set aside as
  malformed (null) has no day and is left out. Statuses and categories outside the documented
  ones are counted in the `other_*` buckets, so every set of buckets adds up to its total.
-#}
{%- set statuses = ['pending', 'sent', 'delivered', 'read', 'failed'] -%}
{%- set categories = ['service', 'marketing', 'utility', 'authentication'] -%}

with message_days as (
    select
        channel_id,
        {{ vobiz_date_day('created_at') }} as date_day,
        count(*) as messages,
        sum(case when direction = 'inbound' then 1 else 0 end) as inbound_messages,
        sum(case when direction = 'outbound' then 1 else 0 end) as outbound_messages,
        {%- for status in statuses %}
        sum(case when direction = 'outbound' and status = '{{ status }}' then 1 else 0 end)
            as {{ status }}_outbound_messages,
        {%- endfor %}
        sum(
            case
                when direction = 'outbound' and (status is null or status not in ('{{ statuses | join("', '") }}'))
                then 1 else 0
            end
        ) as other_status_outbound_messages
    from {{ ref('stg_vobiz__messages') }}
    where created_at is not null and channel_id is not null
    group by channel_id, {{ vobiz_date_day('created_at') }}
),

conversation_days as (
    select
        channel_id,
        {{ vobiz_date_day('started_at') }} as date_day,
        count(*) as conversations_started,
        sum(case when is_billable then 1 else 0 end) as billable_conversations,
        {%- for category in categories %}
        sum(case when is_billable and category = '{{ category }}' then 1 else 0 end)
            as billable_{{ category }}_conversations,
        {%- endfor %}
        sum(
            case
                when is_billable and (category is null or category not in ('{{ categories | join("', '") }}'))
                then 1 else 0
            end
        ) as billable_other_conversations
    from {{ ref('stg_vobiz__conversations') }}
    where started_at is not null and channel_id is not null
    group by channel_id, {{ vobiz_date_day('started_at') }}
),

{% if var('vobiz_using_call_logs') %}
call_days as (
    select
        channel_id,
        {{ vobiz_date_day('started_at') }} as date_day,
        count(*) as calls,
        sum(case when answered_at is not null then 1 else 0 end) as answered_calls,
        sum(coalesce(duration_seconds, 0)) as call_seconds
    from {{ ref('stg_vobiz__call_logs') }}
    where started_at is not null and channel_id is not null
    group by channel_id, {{ vobiz_date_day('started_at') }}
),
{% endif %}

days as (
    select channel_id, date_day from message_days
    union
    select channel_id, date_day from conversation_days
    {%- if var('vobiz_using_call_logs') %}
    union
    select channel_id, date_day from call_days
    {%- endif %}
)

select
    days.channel_id,
    days.date_day,
    coalesce(message_days.messages, 0) as messages,
    coalesce(message_days.inbound_messages, 0) as inbound_messages,
    coalesce(message_days.outbound_messages, 0) as outbound_messages,
    {%- for status in statuses + ['other_status'] %}
    coalesce(message_days.{{ status }}_outbound_messages, 0) as {{ status }}_outbound_messages,
    {%- endfor %}
    coalesce(conversation_days.conversations_started, 0) as conversations_started,
    coalesce(conversation_days.billable_conversations, 0) as billable_conversations,
    {%- for category in categories + ['other'] %}
    coalesce(conversation_days.billable_{{ category }}_conversations, 0) as billable_{{ category }}_conversations,
    {%- endfor %}
    {%- if var('vobiz_using_call_logs') %}
    coalesce(call_days.calls, 0) as calls,
    coalesce(call_days.answered_calls, 0) as answered_calls,
    coalesce(call_days.call_seconds, 0) as call_seconds
    {%- else %}
    cast(null as {{ dbt.type_int() }}) as calls,
    cast(null as {{ dbt.type_int() }}) as answered_calls,
    cast(null as {{ dbt.type_int() }}) as call_seconds
    {%- endif %}
from days
left join message_days on days.channel_id = message_days.channel_id and days.date_day = message_days.date_day
left join conversation_days
    on days.channel_id = conversation_days.channel_id and days.date_day = conversation_days.date_day
{%- if var('vobiz_using_call_logs') %}
left join call_days on days.channel_id = call_days.channel_id and days.date_day = call_days.date_day
{%- endif %}
