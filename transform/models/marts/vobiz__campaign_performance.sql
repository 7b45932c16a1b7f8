{{ config(enabled=var('vobiz_using_campaigns')) }}

with campaigns as (
    select * from {{ ref('stg_vobiz__campaigns') }}
),

{% if var('vobiz_using_templates') %}
templates as (
    select * from {{ ref('stg_vobiz__templates') }}
),
{% endif %}

-- One pass over the recipients per campaign (the median too: percentile_cont skips the nulls of
-- recipients not read), so no aggregate is recomputed per campaign by a nested loop. The two
-- aggregations read the table, not a CTE of it: PostgreSQL writes a CTE read twice out whole
-- (every column of 200,000 recipients on the models benchmark's account) before reading it.
outcomes as (
    select
        campaign_id,
        count(*) as recipients,
        sum(case when status = 'queued' then 1 else 0 end) as queued,
        {{ vobiz_send_funnel('status') }},
        sum(case when status = 'skipped' then 1 else 0 end) as skipped,
        sum(
            case
                when status is null or status not in ('queued', 'sent', 'delivered', 'read', 'failed', 'skipped')
                then 1 else 0
            end
        ) as other_status,
        percentile_cont(0.5) within group (
            order by case
                when status = 'read' then {{ dbt.datediff('sent_at', 'read_at', 'second') }}
            end
        ) as median_seconds_to_read
    from {{ ref('stg_vobiz__campaign_recipients') }}
    group by campaign_id
),

error_counts as (
    select
        campaign_id,
        error_code,
        max(error_desc) as error_desc,
        count(*) as failures
    from {{ ref('stg_vobiz__campaign_recipients') }}
    where status = 'failed' and error_code is not null
    group by campaign_id, error_code
),

top_errors as (
    select campaign_id, error_code, error_desc
    from (
        select
            campaign_id,
            error_code,
            error_desc,
            row_number() over (partition by campaign_id order by failures desc, error_code asc) as error_rank
        from error_counts
    ) as ranked_errors
    where error_rank = 1
)

select
    campaigns.campaign_id,
    campaigns.campaign_name,
    campaigns.template_language,
    campaigns.status,
    campaigns.channel_id,
    campaigns.template_id,
    {{ 'coalesce(templates.template_name, campaigns.template_name)' if var('vobiz_using_templates')
        else 'campaigns.template_name' }} as template_name,
    coalesce(outcomes.recipients, 0) as recipients,
    coalesce(outcomes.queued, 0) as queued,
    coalesce(outcomes.sent, 0) as sent,
    coalesce(outcomes.delivered, 0) as delivered,
    coalesce(outcomes.read_sends, 0) as read,
    coalesce(outcomes.failed, 0) as failed,
    coalesce(outcomes.skipped, 0) as skipped,
    coalesce(outcomes.other_status, 0) as other_status,
    coalesce(outcomes.sent + outcomes.failed, 0) as attempted,
    -- Each rate over the attempted sends (sent, delivered, read or failed): a campaign whose
    -- sends mostly failed does not read as delivered.
    {{ vobiz_send_rates('outcomes') }},
    top_errors.error_code as top_error_code,
    top_errors.error_desc as top_error_desc,
    cast(outcomes.median_seconds_to_read as {{ vobiz_type_double() }}) as median_seconds_to_read,
    campaigns.total_recipients as api_total_recipients,
    campaigns.sent_count as api_sent_count,
    campaigns.delivered_count as api_delivered_count,
    campaigns.read_count as api_read_count,
    campaigns.failed_count as api_failed_count,
    campaigns.skipped_count as api_skipped_count,
    campaigns.scheduled_at,
    campaigns.started_at,
    campaigns.completed_at,
    campaigns.created_at
from campaigns
{%- if var('vobiz_using_templates') %}
left join templates on campaigns.template_id = templates.template_id
{%- endif %}
left join outcomes on campaigns.campaign_id = outcomes.campaign_id
left join top_errors on campaigns.campaign_id = top_errors.campaign_id
