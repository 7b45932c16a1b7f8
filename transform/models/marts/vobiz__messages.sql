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

{% if is_incremental() %}
watermark as (
    select max({{ 'loaded_at' if 'loaded_at' in built_columns else 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }})
        as loaded_at
    from {{ this }}
),

changed_channels as (
    {{ vobiz_changed_keys(this, 'channel_id', 'channels',
        {'channel_phone_number': 'phone_number', 'channel_name': 'display_name'}) }}
),

changed_contacts as (
    {{ vobiz_changed_keys(this, 'contact_id', 'contacts',
        {'contact_name': 'contact_name', 'contact_phone_number': 'phone_number'}) }}
),

changed_conversations as (
    {{ vobiz_changed_keys(this, 'conversation_id', 'conversations', {'conversation_category': 'category'}) }}
),

{% endif %}
messages as (
    select staged.*
    from {{ ref('stg_vobiz__messages') }} as staged
    {%- if is_incremental() %}
    cross join watermark
    where staged.loaded_at >= watermark.loaded_at
        or staged.loaded_at is null
        or watermark.loaded_at is null
        or staged.channel_id in (select channel_id from changed_channels)
        or staged.contact_id in (select contact_id from changed_contacts)
        or staged.conversation_id in (select conversation_id from changed_conversations)
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
    messages.status,
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
