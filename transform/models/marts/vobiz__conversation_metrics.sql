with conversations as (
    select * from {{ ref('stg_vobiz__conversations') }}
),

counts as (
    select * from {{ ref('int_vobiz__conversation_messages') }}
),

-- The reply to the contact's first turn: the first outbound message, not failed, after their
-- first message.
first_replies as (
    select replies.conversation_id, replies.reply_at, replies.reply_seconds
    from {{ ref('int_vobiz__conversation_replies') }} as replies
    inner join (
        select conversation_id, min(turn) as turn
        from {{ ref('int_vobiz__conversation_replies') }}
        group by conversation_id
    ) as first_turns on replies.conversation_id = first_turns.conversation_id and replies.turn = first_turns.turn
)

select
    conversations.conversation_id,
    conversations.account_id,
    conversations.channel_id,
    conversations.contact_id,
    conversations.category,
    conversations.is_billable,
    conversations.status,
    conversations.started_at,
    conversations.expires_at,
    coalesce(counts.messages, 0) as messages,
    coalesce(counts.inbound_messages, 0) as inbound_messages,
    coalesce(counts.outbound_messages, 0) as outbound_messages,
    coalesce(counts.failed_outbound_messages, 0) as failed_outbound_messages,
    coalesce(counts.read_outbound_messages, 0) as read_outbound_messages,
    counts.first_inbound_at,
    first_replies.reply_at as first_response_at,
    first_replies.reply_seconds as first_response_seconds
from conversations
left join counts on conversations.conversation_id = counts.conversation_id
left join first_replies on conversations.conversation_id = first_replies.conversation_id
