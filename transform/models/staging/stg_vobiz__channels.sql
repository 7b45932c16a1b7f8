with live as (
    {{ vobiz_live_rows('channels') }}
)

select
    id as channel_id,
    account_id,
    phone_number,
    display_name,
    waba_id,
    verification_status,
    status,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
    vobiz_loaded_at as loaded_at
from live
