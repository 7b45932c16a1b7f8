{{
    config(
        materialized='incremental',
        unique_key=['channel_id', 'day'],
        on_schema_change='append_new_columns',
    )
}}

{#- An incremental run recomputes whole the days of the last `vobiz_lookback_days`, and every day of a
    channel whose number changed or that was deleted: the rows a full refresh builds. -#}
{%- set since -%}
    {{ dbt.dateadd('day', -var('vobiz_lookback_days'), '(select max(day) from ' ~ this ~ ')') }}
{%- endset -%}
{%- set changed = 'channel_id in (select channel_id from changed_channels)' -%}

with
{% if is_incremental() %}
changed_channels as (
    {{ vobiz_changed_keys(this, 'channel_id', ref('stg_vobiz__channels'), {'phone_number': 'phone_number'}) }}
),

{% endif %}
messages as (
    select
        channel_id,
        {{ dbt.date_trunc('day', 'created_at') }} as day,
        direction,
        status
    from {{ ref('stg_vobiz__messages') }}
    {% if is_incremental() %}where created_at >= {{ since }} or {{ changed }}{% endif %}
),

conversations as (
    select
        channel_id,
        {{ dbt.date_trunc('day', 'started_at') }} as day,
        category,
        is_billable
    from {{ ref('stg_vobiz__conversations') }}
    {% if is_incremental() %}where started_at >= {{ since }} or {{ changed }}{% endif %}
),

calls as (
    select
        channel_id,
        {{ dbt.date_trunc('day', 'started_at') }} as day,
        answered_at,
        duration_seconds
    from {{ ref('stg_vobiz__call_logs') }}
    where started_at is not null
    {% if is_incremental() %}and (started_at >= {{ since }} or {{ changed }}){% endif %}
),

message_days as (
    select
        channel_id,
        day,
        sum(case when direction = 'inbound' then 1 else 0 end) as messages_inbound,
        sum(case when direction = 'outbound' then 1 else 0 end) as messages_outbound,
        sum(case when status = 'failed' then 1 else 0 end) as messages_failed
    from messages
    group by channel_id, day
),

conversation_days as (
    select
        channel_id,
        day,
        count(*) as conversations_started,
        sum(case when is_billable then 1 else 0 end) as billable_conversations,
        {%- for category in ['service', 'marketing', 'utility', 'authentication'] %}
        sum(case when is_billable and category = '{{ category }}' then 1 else 0 end)
            as billable_{{ category }}_conversations{{ ',' if not loop.last }}
        {%- endfor %}
    from conversations
    group by channel_id, day
),

call_days as (
    select
        channel_id,
        day,
        count(*) as calls,
        sum(case when answered_at is not null then 1 else 0 end) as calls_answered,
        sum(coalesce(duration_seconds, 0)) as call_seconds
    from calls
    group by channel_id, day
),

days as (
    select channel_id, day from message_days
    union
    select channel_id, day from conversation_days
    union
    select channel_id, day from call_days
)

select
    days.channel_id,
    channels.phone_number,
    cast(days.day as {{ dbt.type_timestamp() }}) as day,
    coalesce(message_days.messages_inbound, 0) as messages_inbound,
    coalesce(message_days.messages_outbound, 0) as messages_outbound,
    coalesce(message_days.messages_failed, 0) as messages_failed,
    coalesce(conversation_days.conversations_started, 0) as conversations_started,
    coalesce(conversation_days.billable_conversations, 0) as billable_conversations,
    {%- for category in ['service', 'marketing', 'utility', 'authentication'] %}
    coalesce(conversation_days.billable_{{ category }}_conversations, 0) as billable_{{ category }}_conversations,
    {%- endfor %}
    coalesce(call_days.calls, 0) as calls,
    coalesce(call_days.calls_answered, 0) as calls_answered,
    coalesce(call_days.call_seconds, 0) as call_seconds
from days
left join {{ ref('stg_vobiz__channels') }} as channels on days.channel_id = channels.channel_id
left join message_days on days.channel_id = message_days.channel_id and days.day = message_days.day
left join conversation_days on days.channel_id = conversation_days.channel_id and days.day = conversation_days.day
left join call_days on days.channel_id = call_days.channel_id and days.day = call_days.day
where days.channel_id is not null
