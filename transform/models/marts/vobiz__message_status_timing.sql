{{ config(enabled=var('vobiz_using_message_statuses', false)) }}

{#- One row per pulled message WhatsApp pushed a status for: when it was sent, delivered, read or
    failed by WhatsApp's clock (the first time of each), and the seconds from its creation to each:
    figures the API cannot give (it keeps the current status only). Meta: `read` implies delivered,
    and the `delivered` push may never come, so `delivered_at` can be null for a read message. -#}
with pushed as (
    select message_id, status, status_at
    from {{ ref('int_vobiz__message_status_history') }}
    where status_source = 'webhook' and message_id is not null and status_at is not null
),

messages as (
    select * from {{ ref('stg_vobiz__messages') }}
),

firsts as (
    select
        message_id,
        min(case when status = 'sent' then status_at end) as sent_at,
        min(case when status = 'delivered' then status_at end) as delivered_at,
        min(case when status = 'read' then status_at end) as read_at,
        min(case when status = 'failed' then status_at end) as failed_at
    from pushed
    group by message_id
)

select
    messages.message_id,
    messages.channel_id,
    messages.template_name,
    {{ dbt.date_trunc('day', 'messages.created_at') }} as day,
    messages.created_at,
    firsts.sent_at,
    firsts.delivered_at,
    firsts.read_at,
    firsts.failed_at,
    {{ dbt.datediff('messages.created_at', 'firsts.sent_at', 'second') }} as seconds_to_sent,
    {{ dbt.datediff('messages.created_at', 'firsts.delivered_at', 'second') }} as seconds_to_delivered,
    {{ dbt.datediff('messages.created_at', 'firsts.read_at', 'second') }} as seconds_to_read
from firsts
inner join messages on messages.message_id = firsts.message_id
