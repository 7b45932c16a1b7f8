{{ config(enabled=var('vobiz_using_templates')) }}

with live as (
    {{ vobiz_live_rows('templates') }}
)

select
    id as template_id,
    account_id,
    channel_id,
    name as template_name,
    language as template_language,
    category,
    status,
    quality_score,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
    vobiz_loaded_at as loaded_at
from live
