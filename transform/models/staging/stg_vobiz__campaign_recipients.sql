{{ config(enabled=var('vobiz_using_campaigns')) }}

with live as (
    {{ vobiz_live_rows('campaign_recipients') }}
)

select
    id as recipient_id,
    campaign_id,
    contact_id,
    phone_number,
    status,
    error_code,
    error_desc,
    meta_message_id,
    cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
    cast(delivered_at as {{ dbt.type_timestamp() }}) as delivered_at,
    cast(read_at as {{ dbt.type_timestamp() }}) as read_at,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
    vobiz_loaded_at as loaded_at
from live
