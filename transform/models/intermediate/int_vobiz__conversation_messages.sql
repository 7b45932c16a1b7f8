{#- One row per conversation with messages: its message counts and first messages. -#}
{#- Ephemeral: read by vobiz__conversation_metrics alone, so it is inlined there (a CTE) instead of written as a
    table and read back; that mart's primary_key test also catches a key this gave twice. -#}
{{ config(materialized='ephemeral') }}

with messages as (
    select * from {{ ref('stg_vobiz__messages') }}
)

select
    messages.conversation_id,
    count(*) as messages,
    sum(case when messages.direction = 'inbound' then 1 else 0 end) as inbound_messages,
    sum(case when messages.direction = 'outbound' then 1 else 0 end) as outbound_messages,
    sum(case when messages.direction = 'outbound' and messages.status = 'failed' then 1 else 0 end)
        as failed_outbound_messages,
    sum(case when messages.direction = 'outbound' and messages.status = 'read' then 1 else 0 end)
        as read_outbound_messages,
    min(case when messages.direction = 'inbound' then messages.created_at end) as first_inbound_at,
    max(messages.created_at) as last_message_at
from messages
group by messages.conversation_id
