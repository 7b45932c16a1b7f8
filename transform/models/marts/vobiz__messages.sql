{{
    config(
        materialized='incremental',
        unique_key='message_id',
        on_schema_change='append_new_columns',
    )
}}

{#- An incremental run takes again the messages loaded since the rows already built were (by the
    loader's load time, `loaded_at`: whatever the tap re-read, however old the message) and the
    older ones whose channel, contact or conversation now says something else than their row (a
    contact renamed, a channel deleted): it builds the rows a full refresh builds, without reading
    months of messages again (`vobiz_changed_keys`). Without a load time (a loader that writes
    none, or rows built before there was one) every message is taken. -#}
{%- set built_columns = [] -%}
{%- if execute and is_incremental() -%}
    {%- for column in adapter.get_columns_in_relation(this) -%}
        {%- do built_columns.append(column.name | lower) -%}
    {%- endfor -%}
{%- endif %}
with channels as (
    select * from {{ ref('stg_vobiz__channels') }}
),

contacts as (
    select * from {{ ref('stg_vobiz__contacts') }}
),

conversations as (
    select * from {{ ref('stg_vobiz__conversations') }}
),

{%- set using_statuses = var('vobiz_using_message_statuses', false) %}  {#- issue 32 #}
{% if using_statuses %}
-- Issue 32 (pull and push merged): each message's current status, by WhatsApp's time when it pushed one.
current_statuses as (
    select * from {{ ref('int_vobiz__message_current_status') }}
),
{% endif %}

{% if is_incremental() %}
-- The rows already built, read once: the values each conversation's rows copied from its channel,
-- contact and conversation, and when they were loaded. The watermark and the changed keys read
-- these few thousand groups, not the mart's 100,000 rows four times (models benchmark's account).
-- The changed keys compare them with the staging tables themselves, not the CTEs above: a CTE read
-- twice is materialized, and PostgreSQL's guesses of its rows planned the messages' joins as
-- nested loops (6-11 s once contacts had changed, against 0.2 s).
built as (
    select
        channel_id,
        channel_phone_number,
        channel_name,
        contact_id,
        contact_name,
        contact_phone_number,
        conversation_id,
        conversation_category,
        max({{ 'loaded_at' if 'loaded_at' in built_columns else 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }})
            as loaded_at
    from {{ this }}
    group by channel_id, channel_phone_number, channel_name, contact_id, contact_name, contact_phone_number,
        conversation_id, conversation_category
),

watermark as (
    select max(loaded_at) as loaded_at from built
),

changed_channels as (
    {{ vobiz_changed_keys('built', 'channel_id', ref('stg_vobiz__channels'),
        {'channel_phone_number': 'phone_number', 'channel_name': 'display_name'}) }}
),

changed_contacts as (
    {{ vobiz_changed_keys('built', 'contact_id', ref('stg_vobiz__contacts'),
        {'contact_name': 'contact_name', 'contact_phone_number': 'phone_number'}) }}
),

changed_conversations as (
    {{ vobiz_changed_keys('built', 'conversation_id', ref('stg_vobiz__conversations'), {'conversation_category': 'category'}) }}
),

{% if using_statuses %}
-- Issue 32: messages whose pushed status is not their row's, however old (a read 10 days on), or
-- that have no row yet (a message loaded after its window, its status pushed before).
changed_statuses as (
    select current_statuses.message_id
    from current_statuses
    left join {{ this }} as built_rows on built_rows.message_id = current_statuses.message_id
    where current_statuses.status_source = 'webhook' and built_rows.status is distinct from current_statuses.status
),
{% endif %}

{% endif %}
messages as (
    select staged.*
    from {{ ref('stg_vobiz__messages') }} as staged
    {%- if is_incremental() %}
    cross join watermark
    -- Joined to the changed keys (each once), not `in (subquery)` under the `or`: on staging tables
    -- just built (no statistics yet) PostgreSQL guessed those lists too long to hash, and its cost
    -- of scanning them per message planned the joins below as nested loops (3-5 s).
    left join changed_channels on staged.channel_id = changed_channels.channel_id
    left join changed_contacts on staged.contact_id = changed_contacts.contact_id
    left join changed_conversations on staged.conversation_id = changed_conversations.conversation_id
    where staged.loaded_at >= watermark.loaded_at
        or staged.loaded_at is null
        or watermark.loaded_at is null
        or changed_channels.channel_id is not null
        or changed_contacts.contact_id is not null
        or changed_conversations.conversation_id is not null
        {%- if using_statuses %}
        or staged.message_id in (select message_id from changed_statuses)  -- issue 32
        {%- endif %}
    {%- endif %}
)

select
    messages.message_id,
    messages.account_id,
    messages.conversation_id,
    messages.channel_id,
    channels.phone_number as channel_phone_number,
    channels.display_name as channel_name,
    messages.contact_id,
    contacts.contact_name,
    contacts.phone_number as contact_phone_number,
    conversations.category as conversation_category,
    messages.direction,
    messages.message_type,
    {%- if using_statuses %}
    coalesce(current_statuses.status, messages.status) as status,  -- issue 32
    current_statuses.status_at,  -- issue 32
    {%- else %}
    messages.status,
    cast(null as {{ dbt.type_timestamp() }}) as status_at,  -- issue 32
    {%- endif %}
    messages.created_at,
    messages.body,
    messages.media_caption,
    messages.media_filename,
    messages.media_mime_type,
    messages.template_name,
    messages.template_language,
    messages.content,
    messages.meta_message_id,
    messages.loaded_at
from messages
left join channels on messages.channel_id = channels.channel_id
left join contacts on messages.contact_id = contacts.contact_id
left join conversations on messages.conversation_id = conversations.conversation_id
{%- if using_statuses %}
left join current_statuses on current_statuses.message_id = messages.message_id  -- issue 32
{%- endif %}
