with conversations as (
    select * from {{ ref('stg_vobiz__conversations') }}
),

messages as (
    select * from {{ ref('stg_vobiz__messages') }}
),

first_inbound as (
    select conversation_id, min(created_at) as first_inbound_at
    from messages
    where direction = 'inbound'
    group by conversation_id
),

first_response as (
    select messages.conversation_id, min(messages.created_at) as first_response_at
    from messages
    inner join first_inbound on messages.conversation_id = first_inbound.conversation_id
    where messages.direction = 'outbound' and messages.created_at > first_inbound.first_inbound_at
    group by messages.conversation_id
),

counts as (
    select
        conversation_id,
        sum(case when direction = 'inbound' then 1 else 0 end) as inbound_messages,
        sum(case when direction = 'outbound' then 1 else 0 end) as outbound_messages,
        sum(case when direction = 'outbound' and status = 'failed' then 1 else 0 end) as outbound_failed,
        sum(case when direction = 'outbound' and status = 'read' then 1 else 0 end) as outbound_read
    from messages
    group by conversation_id
)

select
    conversations.conversation_id,
    conversations.channel_id,
    conversations.contact_id,
    conversations.category,
    conversations.is_billable,
    conversations.status,
    conversations.started_at,
    conversations.expires_at,
    coalesce(counts.inbound_messages, 0) as inbound_messages,
    coalesce(counts.outbound_messages, 0) as outbound_messages,
    first_inbound.first_inbound_at,
    first_response.first_response_at,
    {{ dbt.datediff('first_inbound.first_inbound_at', 'first_response.first_response_at', 'second') }}
        as first_response_seconds,
    coalesce(counts.outbound_failed, 0) as outbound_failed,
    coalesce(counts.outbound_read, 0) as outbound_read
from conversations
left join counts on conversations.conversation_id = counts.conversation_id
left join first_inbound on conversations.conversation_id = first_inbound.conversation_id
left join first_response on conversations.conversation_id = first_response.conversation_id
