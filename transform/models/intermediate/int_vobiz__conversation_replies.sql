{#-
  One row per customer turn of a conversation: the contact's messages since the business's
  last reply, and the reply that ended them. A failed send is no reply (the contact never got
  it), and a reply stamped in the same second as a customer message does not answer it (at a
  tie the outbound message is ordered first). Used by vobiz__conversation_metrics and
  vobiz__response_times.

  One sort and one aggregation: a message's turn is the number of replies before it, so the
  reply that ends turn n is the outbound message numbered n, grouped with the turn's customer
  messages (no join of replies to turns). Messages tied on time and direction need no further
  order: inbound ones have the same replies before them, outbound ones the same time.
-#}
with messages as (
    select
        conversation_id,
        created_at,
        case when direction = 'outbound' then 1 else 0 end as is_reply
    from {{ ref('stg_vobiz__messages') }}
    where created_at is not null
        and direction in ('inbound', 'outbound')
        and not (direction = 'outbound' and status = 'failed')
),

numbered as (
    select
        conversation_id,
        created_at,
        is_reply,
        -- The business's replies before this message: an inbound message's turn; an outbound
        -- message answers the turn of that number.
        sum(is_reply) over (
            partition by conversation_id
            order by created_at, is_reply desc
            rows between unbounded preceding and current row
        ) - is_reply as turn
    from messages
),

turns as (
    select
        conversation_id,
        turn,
        sum(1 - is_reply) as customer_messages,
        min(case when is_reply = 0 then created_at end) as customer_message_at,
        max(case when is_reply = 0 then created_at end) as last_customer_message_at,
        max(case when is_reply = 1 then created_at end) as reply_at
    from numbered
    group by conversation_id, turn
)

select
    conversation_id,
    turn,
    customer_messages,
    customer_message_at,
    last_customer_message_at,
    reply_at,
    {{ dbt.datediff('customer_message_at', 'reply_at', 'second') }} as reply_seconds,
    -- WhatsApp's customer-service window: a free-form reply is allowed within 24 hours of the
    -- contact's latest message.
    case
        when reply_at is null then null
        when reply_at <= {{ dbt.dateadd('hour', 24, 'last_customer_message_at') }} then true
        else false
    end as replied_within_window
from turns
where customer_messages > 0
