{{ config(enabled=var('vobiz_using_message_statuses', false)) }}

{#- One row per channel, template (null: not a template message) and UTC day of creation: the
    messages WhatsApp pushed statuses for, and the median (p50) and p90 of the seconds from creation
    to sent, delivered and read (percentile_cont skips the messages that never got there). -#}
with timing as (
    select * from {{ ref('vobiz__message_status_timing') }}
)

select
    channel_id,
    template_name,
    day,
    count(*) as messages,
    sum(case when sent_at is not null then 1 else 0 end) as messages_sent,
    sum(case when delivered_at is not null then 1 else 0 end) as messages_delivered,
    sum(case when read_at is not null then 1 else 0 end) as messages_read,
    sum(case when failed_at is not null then 1 else 0 end) as messages_failed,
    percentile_cont(0.5) within group (order by seconds_to_sent) as p50_seconds_to_sent,
    percentile_cont(0.9) within group (order by seconds_to_sent) as p90_seconds_to_sent,
    percentile_cont(0.5) within group (order by seconds_to_delivered) as p50_seconds_to_delivered,
    percentile_cont(0.9) within group (order by seconds_to_delivered) as p90_seconds_to_delivered,
    percentile_cont(0.5) within group (order by seconds_to_read) as p50_seconds_to_read,
    percentile_cont(0.9) within group (order by seconds_to_read) as p90_seconds_to_read
from timing
group by channel_id, template_name, day
