{#-
  One row per template, channel and UTC day of sending: the sends of campaigns (their recipients)
  and the template messages sent in conversations (a message whose wamid a recipient carries is
  that recipient's send, counted once), their outcomes and most frequent error. A template is
  known by channel, name and language (a send without a time, channel or template name has no
  row); its category and status come from the templates stream.
-#}
{%- set statuses = "('pending', 'sent', 'delivered', 'read', 'failed', 'skipped')" -%}

with
{% if var('vobiz_using_campaigns') %}
campaigns as (
    select * from {{ ref('stg_vobiz__campaigns') }}
),

-- The recipients grouped by campaign, day, status and error before their campaign and template
-- are joined: 200,000 recipients on the models benchmark's account make a few thousand groups.
recipient_groups as (
    select
        campaign_id,
        {{ vobiz_date_day('coalesce(sent_at, created_at)') }} as date_day,
        status,
        error_code,
        max(error_desc) as error_desc,
        count(*) as sends
    from {{ ref('stg_vobiz__campaign_recipients') }}
    where coalesce(sent_at, created_at) is not null
    group by campaign_id, {{ vobiz_date_day('coalesce(sent_at, created_at)') }}, status, error_code
),

recipient_sends as (
    select
        campaigns.channel_id,
        {{ 'coalesce(templates.template_name, campaigns.template_name)' if var('vobiz_using_templates')
            else 'campaigns.template_name' }} as template_name,
        {{ 'coalesce(templates.template_language, campaigns.template_language)' if var('vobiz_using_templates')
            else 'campaigns.template_language' }} as template_language,
        recipient_groups.date_day,
        case when recipient_groups.status = 'queued' then 'pending' else recipient_groups.status end as status,
        recipient_groups.error_code,
        recipient_groups.error_desc,
        recipient_groups.sends
    from recipient_groups
    inner join campaigns on recipient_groups.campaign_id = campaigns.campaign_id
    {%- if var('vobiz_using_templates') %}
    left join {{ ref('stg_vobiz__templates') }} as templates on campaigns.template_id = templates.template_id
    {%- endif %}
),
{% endif %}

message_sends as (
    select
        channel_id,
        template_name,
        template_language,
        {{ vobiz_date_day('created_at') }} as date_day,
        status,
        cast(null as {{ dbt.type_string() }}) as error_code,
        cast(null as {{ dbt.type_string() }}) as error_desc,
        count(*) as sends
    from {{ ref('stg_vobiz__messages') }} as messages
    where message_type = 'template' and direction = 'outbound' and created_at is not null
    {%- if var('vobiz_using_campaigns') %}
        -- An anti join, not `not in (subquery)`: PostgreSQL hashes that subquery only while it fits
        -- in work_mem, and otherwise scans it for every message (174 s on the models benchmark's
        -- 200,000 recipients once their table was analyzed, against 0.3 s for the anti join).
        and not exists (
            select 1 from {{ ref('stg_vobiz__campaign_recipients') }} as recipients
            where recipients.meta_message_id = messages.meta_message_id
        )
    {%- endif %}
    group by channel_id, template_name, template_language, {{ vobiz_date_day('created_at') }}, status
),

-- Groups of sends alike (`sends` of them): the template messages and the campaigns' recipients.
send_groups as (
    select * from message_sends
    where channel_id is not null and template_name is not null
    {%- if var('vobiz_using_campaigns') %}
    union all
    select * from recipient_sends
    where channel_id is not null and template_name is not null
    {%- endif %}
),

outcomes as (
    select
        channel_id,
        template_name,
        template_language,
        date_day,
        sum(sends) as sends,
        sum(case when status = 'pending' then sends else 0 end) as pending,
        {{ vobiz_send_funnel('status', 'sends') }},
        sum(case when status = 'skipped' then sends else 0 end) as skipped,
        sum(case when status is null or status not in {{ statuses }} then sends else 0 end) as other_status
    from send_groups
    group by channel_id, template_name, template_language, date_day
),

error_counts as (
    select
        channel_id, template_name, template_language, date_day, error_code,
        max(error_desc) as error_desc,
        sum(sends) as failures
    from send_groups
    where status = 'failed' and error_code is not null
    group by channel_id, template_name, template_language, date_day, error_code
),

top_errors as (
    select *
    from (
        select
            error_counts.*,
            row_number() over (
                partition by channel_id, template_name, template_language, date_day
                order by failures desc, error_code asc
            ) as error_rank
        from error_counts
    ) as ranked
    where error_rank = 1
)

select
    outcomes.channel_id,
    {{ 'templates.template_id' if var('vobiz_using_templates') else 'cast(null as ' ~ dbt.type_string() ~ ')' }}
        as template_id,
    outcomes.template_name,
    outcomes.template_language,
    {{ 'templates.category' if var('vobiz_using_templates') else 'cast(null as ' ~ dbt.type_string() ~ ')' }}
        as template_category,
    {{ 'templates.status' if var('vobiz_using_templates') else 'cast(null as ' ~ dbt.type_string() ~ ')' }}
        as template_status,
    outcomes.date_day,
    outcomes.sends,
    outcomes.pending,
    outcomes.sent,
    outcomes.delivered,
    outcomes.read_sends as read,
    outcomes.failed,
    outcomes.skipped,
    outcomes.other_status,
    outcomes.sent + outcomes.failed as attempted,
    {{ vobiz_send_rates('outcomes') }},
    top_errors.error_code as top_error_code,
    top_errors.error_desc as top_error_desc
from outcomes
{%- if var('vobiz_using_templates') %}
left join {{ ref('stg_vobiz__templates') }} as templates
    on outcomes.channel_id = templates.channel_id
    and outcomes.template_name = templates.template_name
    and outcomes.template_language is not distinct from templates.template_language
{%- endif %}
left join top_errors
    on outcomes.channel_id = top_errors.channel_id
    and outcomes.template_name = top_errors.template_name
    and outcomes.template_language is not distinct from top_errors.template_language
    and outcomes.date_day = top_errors.date_day
