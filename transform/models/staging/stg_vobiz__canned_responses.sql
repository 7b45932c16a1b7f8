with live as (
    {{ vobiz_live_rows('canned_responses') }}
)

select
    id as canned_response_id,
    shortcut,
    content,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    vobiz_loaded_at as loaded_at
from live
