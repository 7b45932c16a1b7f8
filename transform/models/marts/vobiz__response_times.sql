{#-
  One row per conversation in which the contact wrote: how fast the business replied, as a
  support lead reports it. A reply is the first outbound message after a customer turn that did
  not fail (int_vobiz__conversation_replies). Times in wall-clock seconds and in business seconds:
  only the seconds inside the `vobiz_business_hours` var's days and hours, in its time zone
  (a reply that takes longer than 400 days counts its first 400 days of business hours).
-#}
{%- set hours = var('vobiz_business_hours') -%}
{%- set zone = hours['time_zone'] -%}

with replies as (
    select * from {{ ref('int_vobiz__conversation_replies') }}
),

local_replies as (
    select
        conversation_id,
        turn,
        asked_at,
        answered_at,
        {{ dbt.datediff('asked_at', 'answered_at', 'day') }} as days_spanned
    from (
        select
            conversation_id,
            turn,
            {{ vobiz_local_time('customer_message_at', zone) }} as asked_at,
            {{ vobiz_local_time('reply_at', zone) }} as answered_at
        from replies
        where reply_at is not null
    ) as local_times
),

-- Each local day a reply spans, and the business seconds of it.
reply_days as (
    select
        local_replies.conversation_id,
        local_replies.turn,
        local_replies.asked_at,
        local_replies.answered_at,
        {{ dbt.dateadd('day', 'days.generated_number - 1', dbt.date_trunc('day', 'local_replies.asked_at')) }}
            as day_start
    from local_replies
    inner join ({{ dbt.generate_series(400) }}) as days
        on days.generated_number <= local_replies.days_spanned + 1
),

business_windows as (
    select
        conversation_id,
        turn,
        case when asked_at > {{ dbt.dateadd('hour', hours['start_hour'], 'day_start') }}
            then asked_at else {{ dbt.dateadd('hour', hours['start_hour'], 'day_start') }} end as opened_at,
        case when answered_at < {{ dbt.dateadd('hour', hours['end_hour'], 'day_start') }}
            then answered_at else {{ dbt.dateadd('hour', hours['end_hour'], 'day_start') }} end as closed_at
    from reply_days
    where {{ vobiz_iso_weekday('day_start') }} in ({{ hours['days'] | join(', ') }})
),

business_seconds as (
    select
        conversation_id,
        turn,
        sum(
            case when closed_at > opened_at then {{ dbt.datediff('opened_at', 'closed_at', 'second') }} else 0 end
        ) as reply_business_seconds
    from business_windows
    group by conversation_id, turn
),

turns as (
    select
        replies.*,
        case
            when replies.reply_at is not null then coalesce(business_seconds.reply_business_seconds, 0)
        end as reply_business_seconds,
        row_number() over (partition by replies.conversation_id order by replies.turn) as turn_rank
    from replies
    left join business_seconds
        on replies.conversation_id = business_seconds.conversation_id and replies.turn = business_seconds.turn
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
