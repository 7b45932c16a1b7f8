{#- One row per channel and UTC day with billable conversations: their estimated spend (int_vobiz__priced_units). -#}
select
    channel_id,
    date_day,
    sum(units) as billable_conversations,
    sum(case when price is not null then units else 0 end) as priced_conversations,
    sum(case when price is null then units else 0 end) as unpriced_conversations,
    coalesce(sum(price * units), 0) as estimated_spend,
    max(currency) as currency
from {{ ref('int_vobiz__priced_units') }}
where unit_type = 'conversation' and date_day is not null and channel_id is not null
group by channel_id, date_day
