with live as (
    {{ vobiz_live_rows('contacts') }}
)

select
    id as contact_id,
    account_id,
    phone_number,
    name as contact_name,
    tags,
    cast(last_active_at as {{ dbt.type_timestamp() }}) as last_active_at,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
    vobiz_loaded_at as loaded_at
from live
