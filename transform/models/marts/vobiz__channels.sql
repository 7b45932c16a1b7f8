{#- One row per live channel (a WhatsApp business number), with its activity. -#}
with days as (
    select
        channel_id,
        sum(messages) as messages,
        sum(inbound_messages) as inbound_messages,
        sum(outbound_messages) as outbound_messages,
        sum(conversations_started) as conversations,
        sum(billable_conversations) as billable_conversations,
        sum(calls) as calls,
        min(date_day) as first_active_day,
        max(date_day) as last_active_day
    from {{ ref('int_vobiz__channel_days') }}
    group by channel_id
)
{%- if var('vobiz_using_templates') %},

templates as (
    select
        channel_id,
        count(*) as templates,
        sum(case when lower(status) = 'approved' then 1 else 0 end) as approved_templates
    from {{ ref('stg_vobiz__templates') }}
    group by channel_id
)
{%- endif %}

select
    channels.channel_id,
    channels.account_id,
    channels.phone_number,
    channels.display_name,
    channels.waba_id,
    channels.verification_status,
    channels.status,
    channels.created_at,
    channels.updated_at,
    coalesce(days.messages, 0) as messages,
    coalesce(days.inbound_messages, 0) as inbound_messages,
    coalesce(days.outbound_messages, 0) as outbound_messages,
    coalesce(days.conversations, 0) as conversations,
    coalesce(days.billable_conversations, 0) as billable_conversations,
    {{ 'coalesce(days.calls, 0)' if var('vobiz_using_call_logs') else 'days.calls' }} as calls,
    {%- if var('vobiz_using_templates') %}
    coalesce(templates.templates, 0) as templates,
    coalesce(templates.approved_templates, 0) as approved_templates,
    {%- else %}
    cast(null as {{ dbt.type_int() }}) as templates,
    cast(null as {{ dbt.type_int() }}) as approved_templates,
    {%- endif %}
    days.first_active_day,
    days.last_active_day
from {{ ref('stg_vobiz__channels') }} as channels
left join days on channels.channel_id = days.channel_id
{%- if var('vobiz_using_templates') %}
left join templates on channels.channel_id = templates.channel_id
{%- endif %}
