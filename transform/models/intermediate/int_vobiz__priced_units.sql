{#-
  One row per unit WhatsApp bills, with the price the rate card (seed vobiz_rate_card) gives it:
  each billable conversation (conversation-based pricing), and each delivered message of a
  campaign (per-message pricing of template messages). The unit's market is the rate card's
  longest calling code the contact's number starts with (`*`: any other); a category the card
  does not price leaves the unit unpriced (price null). The spend marts add these up.
-#}
with units as (
    select
        'conversation' as unit_type,
        conversations.conversation_id as unit_id,
        conversations.channel_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        {{ vobiz_date_day('conversations.started_at') }} as date_day,
        conversations.category,
        contacts.phone_number
    from {{ ref('stg_vobiz__conversations') }} as conversations
    left join {{ ref('stg_vobiz__contacts') }} as contacts on conversations.contact_id = contacts.contact_id
    where conversations.is_billable
    {%- if var('vobiz_using_campaigns') %}
    union all
    select
        'campaign_delivery' as unit_type,
        recipients.recipient_id as unit_id,
        campaigns.channel_id,
        campaigns.campaign_id,
        {{ vobiz_date_day('coalesce(recipients.delivered_at, recipients.sent_at)') }} as date_day,
        {{ "coalesce(templates.category, 'marketing')" if var('vobiz_using_templates') else "'marketing'" }}
            as category,
        recipients.phone_number
    from {{ ref('stg_vobiz__campaign_recipients') }} as recipients
    inner join {{ ref('stg_vobiz__campaigns') }} as campaigns on recipients.campaign_id = campaigns.campaign_id
    {%- if var('vobiz_using_templates') %}
    left join {{ ref('stg_vobiz__templates') }} as templates on campaigns.template_id = templates.template_id
    {%- endif %}
    where recipients.status in ('delivered', 'read')
    {%- endif %}
),

-- Matched once per number and category (far fewer than the units), then joined back on equality.
numbers as (
    select distinct coalesce(phone_number, '') as phone_number, lower(category) as category
    from units
),

rates as (
    select
        numbers.phone_number,
        numbers.category,
        card.market,
        card.price,
        card.currency,
        row_number() over (
            partition by numbers.phone_number, numbers.category
            order by case when card.calling_code = '*' then 0 else {{ dbt.length('card.calling_code') }} end desc
        ) as match_rank
    from numbers
    inner join {{ ref('vobiz_rate_card') }} as card
        on numbers.category = lower(card.category)
        and (
            card.calling_code = '*'
            or numbers.phone_number like {{ dbt.concat(["'+'", 'card.calling_code', "'%'"]) }}
        )
)

select
    units.*,
    rates.market,
    rates.price,
    rates.currency
from units
left join rates
    on coalesce(units.phone_number, '') = rates.phone_number
    and lower(units.category) = rates.category
    and rates.match_rank = 1
