{{ config(enabled=var('vobiz_using_campaigns')) }}

with live as (
    {{ vobiz_live_rows('campaigns') }}
)

select
    id as campaign_id,
    name as campaign_name,
    status,
    channel_id,
    template_id,
    template_name,
    template_lang as template_language,
    cast(total_recipients as {{ dbt.type_int() }}) as total_recipients,
    cast(sent_count as {{ dbt.type_int() }}) as sent_count,
    cast(delivered_count as {{ dbt.type_int() }}) as delivered_count,
    cast(read_count as {{ dbt.type_int() }}) as read_count,
    cast(failed_count as {{ dbt.type_int() }}) as failed_count,
    cast(skipped_count as {{ dbt.type_int() }}) as skipped_count,
    cast(scheduled_at as {{ dbt.type_timestamp() }}) as scheduled_at,
    cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
    cast(completed_at as {{ dbt.type_timestamp() }}) as completed_at,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
    vobiz_loaded_at as loaded_at
from live
