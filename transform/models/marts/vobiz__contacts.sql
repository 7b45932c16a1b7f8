with contacts as (
    select * from {{ ref('stg_vobiz__contacts') }}
),

messages as (
    select * from {{ ref('int_vobiz__contact_messages') }}
),

{% if var('vobiz_using_campaigns') %}
campaigns as (
    select
        contact_id,
        count(distinct case when status in ('sent', 'delivered', 'read') then campaign_id end)
            as campaigns_received,
        count(distinct case when status = 'read' then campaign_id end) as campaigns_read
    from {{ ref('stg_vobiz__campaign_recipients') }}
    group by contact_id
),
{% endif %}

{% if var('vobiz_using_call_logs') %}
-- Calls by the contact's side of the call: the caller of an inbound one, the callee of an
-- outbound one. Grouped first and joined on equality (an OR join is a nested loop: minutes for
-- 50,000 contacts and 20,000 calls).
calls as (
    select
        case when direction = 'inbound' then from_number else to_number end as phone_number,
        count(*) as calls
    from {{ ref('stg_vobiz__call_logs') }}
    where direction in ('inbound', 'outbound')
    group by case when direction = 'inbound' then from_number else to_number end
),
{% endif %}

conversations as (
    select contact_id, count(*) as conversations
    from {{ ref('stg_vobiz__conversations') }}
    group by contact_id
)

select
    contacts.contact_id,
    contacts.account_id,
    contacts.phone_number,
    contacts.contact_name,
    contacts.tags,
    contacts.created_at,
    contacts.updated_at,
    contacts.last_active_at,
    messages.first_message_at,
    messages.last_inbound_at,
    messages.last_outbound_at,
    coalesce(messages.messages, 0) as messages,
    coalesce(conversations.conversations, 0) as conversations,
    {%- if var('vobiz_using_campaigns') %}
    coalesce(campaigns.campaigns_received, 0) as campaigns_received,
    coalesce(campaigns.campaigns_read, 0) as campaigns_read,
    {%- else %}
    cast(null as {{ dbt.type_int() }}) as campaigns_received,
    cast(null as {{ dbt.type_int() }}) as campaigns_read,
    {%- endif %}
    {%- if var('vobiz_using_call_logs') %}
    coalesce(calls.calls, 0) as calls
    {%- else %}
    cast(null as {{ dbt.type_int() }}) as calls
    {%- endif %}
from contacts
left join messages on contacts.contact_id = messages.contact_id
left join conversations on contacts.contact_id = conversations.contact_id
{%- if var('vobiz_using_campaigns') %}
left join campaigns on contacts.contact_id = campaigns.contact_id
{%- endif %}
{%- if var('vobiz_using_call_logs') %}
left join calls on contacts.phone_number = calls.phone_number
{%- endif %}
