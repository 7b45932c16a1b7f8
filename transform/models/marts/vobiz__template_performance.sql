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

recipient_sends as (
    select
        campaigns.channel_id,
        {{ 'coalesce(templates.template_name, campaigns.template_name)' if var('vobiz_using_templates')
            else 'campaigns.template_name' }} as template_name,
        {{ 'coalesce(templates.template_language, campaigns.template_language)' if var('vobiz_using_templates')
            else 'campaigns.template_language' }} as template_language,
        coalesce(recipients.sent_at, recipients.created_at) as sent_at,
        case when recipients.status = 'queued' then 'pending' else recipients.status end as status,
        recipients.error_code,
        recipients.error_desc
    from {{ ref('stg_vobiz__campaign_recipients') }} as recipients
    inner join campaigns on recipients.campaign_id = campaigns.campaign_id
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
        created_at as sent_at,
        status,
        cast(null as {{ dbt.type_string() }}) as error_code,
        cast(null as {{ dbt.type_string() }}) as error_desc
    from {{ ref('stg_vobiz__messages') }} as messages
    where message_type = 'template' and direction = 'outbound'
    {%- if var('vobiz_using_campaigns') %}
        -- An anti join, not `not in (subquery)`: PostgreSQL hashes that subquery only while it fits
        -- in work_mem, and otherwise scans it for every message (174 s on the models benchmark's
        -- 200,000 recipients once their table was analyzed, against 0.3 s for the anti join).
        and not exists (
            select 1 from {{ ref('stg_vobiz__campaign_recipients') }} as recipients
            where recipients.meta_message_id = messages.meta_message_id
        )
    {%- endif %}
),

sends as (
    select channel_id, template_name, template_language, {{ vobiz_date_day('sent_at') }} as date_day,
        status, error_code, error_desc
    from message_sends
    where sent_at is not null
    {%- if var('vobiz_using_campaigns') %}
    union all
    select channel_id, template_name, template_language, {{ vobiz_date_day('sent_at') }} as date_day,
        status, error_code, error_desc
    from recipient_sends
    where sent_at is not null
    {%- endif %}
),

outcomes as (
    select
        channel_id,
        template_name,
        template_language,
        date_day,
        count(*) as sends,
        sum(case when status = 'pending' then 1 else 0 end) as pending,
        {{ vobiz_send_funnel('status') }},
        sum(case when status = 'skipped' then 1 else 0 end) as skipped,
        sum(case when status is null or status not in {{ statuses }} then 1 else 0 end) as other_status
    from sends
    where channel_id is not null and template_name is not null
    group by channel_id, template_name, template_language, date_day
),

error_counts as (
    select
        channel_id, template_name, template_language, date_day, error_code,
        max(error_desc) as error_desc,
        count(*) as failures
    from sends
    where status = 'failed' and error_code is not null and channel_id is not null and template_name is not null
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
