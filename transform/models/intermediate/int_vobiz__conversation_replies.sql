{#-
  One row per customer turn of a conversation: the contact's messages since the business's
  last reply, and the reply that ended them. A failed send is no reply (the contact never got
  it), and a reply stamped in the same second as a customer message does not answer it (at a
  tie the outbound message is ordered first). Used by vobiz__conversation_metrics and
  vobiz__response_times.
-#}
with messages as (
    select conversation_id, message_id, direction, created_at
    from {{ ref('stg_vobiz__messages') }}
    where created_at is not null
        and direction in ('inbound', 'outbound')
        and not (direction = 'outbound' and status = 'failed')
),

numbered as (
    select
        conversation_id,
        direction,
        created_at,
        -- The business's replies before this message: an inbound message's turn; an outbound
        -- message answers the turn of that number.
        sum(case when direction = 'outbound' then 1 else 0 end) over (
            partition by conversation_id
            order by created_at, direction desc, message_id
            rows between unbounded preceding and 1 preceding
        ) as replies_before
    from messages
),

turns as (
    select
        conversation_id,
        coalesce(replies_before, 0) as turn,
        min(created_at) as customer_message_at,
        max(created_at) as last_customer_message_at,
        count(*) as customer_messages
    from numbered
    where direction = 'inbound'
    group by conversation_id, coalesce(replies_before, 0)
),

replies as (
    select conversation_id, coalesce(replies_before, 0) as turn, created_at as reply_at
    from numbered
    where direction = 'outbound'
)

select
    turns.conversation_id,
    turns.turn,
    turns.customer_messages,
    turns.customer_message_at,
    turns.last_customer_message_at,
    replies.reply_at,
    {{ dbt.datediff('turns.customer_message_at', 'replies.reply_at', 'second') }} as reply_seconds,
    -- WhatsApp's customer-service window: a free-form reply is allowed within 24 hours of the
    -- contact's latest message.
    case
        when replies.reply_at is null then null
        when replies.reply_at <= {{ dbt.dateadd('hour', 24, 'turns.last_customer_message_at') }} then true
        else false
    end as replied_within_window
from turns
left join replies on turns.conversation_id = replies.conversation_id and turns.turn = replies.turn
