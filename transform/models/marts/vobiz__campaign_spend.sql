{{ config(enabled=var('vobiz_using_campaigns')) }}

{#- One row per live campaign: its delivered messages and their estimated spend (int_vobiz__priced_units). -#}
with deliveries as (
    select
        campaign_id,
        sum(units) as delivered,
        sum(case when price is not null then units else 0 end) as priced_deliveries,
        sum(case when price is null then units else 0 end) as unpriced_deliveries,
        coalesce(sum(price * units), 0) as estimated_spend,
        max(category) as pricing_category,
        max(currency) as currency
    from {{ ref('int_vobiz__priced_units') }}
    where unit_type = 'campaign_delivery'
    group by campaign_id
)

select
    campaigns.campaign_id,
    campaigns.campaign_name,
    campaigns.channel_id,
    deliveries.pricing_category,
    coalesce(deliveries.delivered, 0) as delivered,
    coalesce(deliveries.priced_deliveries, 0) as priced_deliveries,
    coalesce(deliveries.unpriced_deliveries, 0) as unpriced_deliveries,
    coalesce(deliveries.estimated_spend, 0) as estimated_spend,
    deliveries.currency
from {{ ref('stg_vobiz__campaigns') }} as campaigns
left join deliveries on campaigns.campaign_id = deliveries.campaign_id
