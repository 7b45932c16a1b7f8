{#- One row per channel and UTC day with billable conversations: their estimated spend (int_vobiz__priced_units). -#}
select
    channel_id,
    date_day,
    count(*) as billable_conversations,
    count(price) as priced_conversations,
    count(*) - count(price) as unpriced_conversations,
    coalesce(sum(price), 0) as estimated_spend,
    max(currency) as currency
from {{ ref('int_vobiz__priced_units') }}
where unit_type = 'conversation' and date_day is not null and channel_id is not null
group by channel_id, date_day
