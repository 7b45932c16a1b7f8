{#-
  One row per conversation in which the contact wrote: how fast the business replied, as a
  support lead reports it. A reply is the first outbound message after a customer turn that did
  not fail (int_vobiz__conversation_replies). Times in wall-clock seconds and in business seconds:
  only the seconds inside the `vobiz_business_hours` var's days and hours, in its time zone
  (vobiz_business_seconds_since_epoch).
-#}
{%- set hours = var('vobiz_business_hours') -%}
{%- set zone = hours['time_zone'] -%}

with replies as (
    select * from {{ ref('int_vobiz__conversation_replies') }}
),

turns as (
    select
        replies.*,
        case
            when replies.reply_at is not null
            then {{ vobiz_business_seconds_since_epoch(vobiz_local_time('replies.reply_at', zone)) }}
                - {{ vobiz_business_seconds_since_epoch(vobiz_local_time('replies.customer_message_at', zone)) }}
        end as reply_business_seconds,
        row_number() over (partition by replies.conversation_id order by replies.turn) as turn_rank
    from replies
),

per_conversation as (
    select
        conversation_id,
        count(*) as customer_turns,
        count(reply_at) as replied_turns,
        sum(case when replied_within_window then 1 else 0 end) as replies_within_window,
        max(case when turn_rank = 1 then reply_seconds end) as first_response_seconds,
        max(case when turn_rank = 1 then reply_business_seconds end) as first_response_business_seconds,
        max(case when turn_rank = 1 then case when replied_within_window then 1 else 0 end end)
            as first_response_within_window,
        percentile_cont(0.5) within group (order by reply_seconds) as median_response_seconds,
        percentile_cont(0.5) within group (order by reply_business_seconds) as median_response_business_seconds
    from turns
    group by conversation_id
)

select
    conversations.conversation_id,
    conversations.account_id,
    conversations.channel_id,
    conversations.contact_id,
    conversations.category,
    conversations.started_at,
    per_conversation.customer_turns,
    per_conversation.replied_turns,
    per_conversation.replies_within_window,
    per_conversation.first_response_seconds,
    per_conversation.first_response_business_seconds,
    case
        when per_conversation.first_response_seconds is null then null
        when per_conversation.first_response_within_window = 1 then true
        else false
    end as first_response_within_window,
    cast(per_conversation.median_response_seconds as {{ vobiz_type_double() }}) as median_response_seconds,
    cast(per_conversation.median_response_business_seconds as {{ vobiz_type_double() }})
        as median_response_business_seconds
from per_conversation
inner join {{ ref('stg_vobiz__conversations') }} as conversations
    on per_conversation.conversation_id = conversations.conversation_id
