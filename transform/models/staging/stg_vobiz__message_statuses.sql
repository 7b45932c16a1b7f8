{{ config(enabled=var('vobiz_using_message_statuses', false)) }}

{#- The WhatsApp statuses the tap read from the webhook capture (`webhook_capture`): one row per
    message, status and WhatsApp time, however often Vobiz retried or WhatsApp repeated it (the
    tap's key, `id`, is made of those). -#}
with live as (
    {{ vobiz_live_rows('message_statuses') }}
)

select
    id as message_status_id,
    wamid,
    status,
    cast(status_at as {{ dbt.type_timestamp() }}) as status_at,
    recipient_id,
    phone_number_id,
    conversation_id as meta_conversation_id,
    conversation_origin_type,
    pricing_category,
    pricing_type,
    event_id,
    cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
    cast(received_at as {{ dbt.type_timestamp() }}) as received_at
from live
