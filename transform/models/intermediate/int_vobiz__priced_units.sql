{#-
  The units WhatsApp bills, priced by the rate card (seed vobiz_rate_card), one row per group of
  units priced alike: unit type (a billable conversation, conversation-based pricing; a delivered
  message of a campaign, per-message pricing of template messages), channel, campaign, UTC day,
  category and the number's leading digits, with how many units. The market is the rate card's
  longest calling code the contact's number starts with (`*`: any other); a category the card
  does not price leaves the units unpriced (price null). The spend marts add these up.
  Grouped before pricing, not one row per unit: the numbers' leading digits (as many as the
  card's longest code) are all the match needs, and a table of every unit (134,634 rows on the
  models benchmark's account) cost more to write than the marts that read it.
-#}
{%- set code_digits = 4 -%}
{%- if execute -%}
    {%- set longest = run_query('select max(' ~ dbt.length('calling_code') ~ ') from ' ~ ref('vobiz_rate_card')) -%}
    {%- set code_digits = [longest.columns[0].values()[0] or 1, 1] | max -%}
{%- endif %}
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

groups as (
    select
        unit_type,
        channel_id,
        campaign_id,
        date_day,
        category,
        -- '+' and as many digits as the card's longest calling code: what the match reads.
        substr(coalesce(phone_number, ''), 1, {{ code_digits + 1 }}) as number_prefix,
        count(*) as units
    from units
    group by unit_type, channel_id, campaign_id, date_day, category,
        substr(coalesce(phone_number, ''), 1, {{ code_digits + 1 }})
),

-- Matched once per number prefix and category, then joined back on equality.
numbers as (
    select distinct number_prefix as phone_number, lower(category) as category
    from groups
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
    groups.unit_type,
    groups.channel_id,
    groups.campaign_id,
    groups.date_day,
    groups.category,
    groups.number_prefix,
    groups.units,
    rates.market,
    rates.price,
    rates.currency
from groups
left join rates
    on groups.number_prefix = rates.phone_number
    and lower(groups.category) = rates.category
    and rates.match_rank = 1
