with live as (
    {{ vobiz_live_rows('conversations') }}
)

select
    id as conversation_id,
    account_id,
    channel_id,
    contact_id,
    category,
    cast(is_billable as {{ dbt.type_boolean() }}) as is_billable,
    status,
    cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
    cast(expires_at as {{ dbt.type_timestamp() }}) as expires_at,
    vobiz_loaded_at as loaded_at
from live
