{{ config(enabled=var('vobiz_using_call_logs')) }}

with live as (
    {{ vobiz_live_rows('call_logs') }}
)

select
    id as call_id,
    account_id,
    channel_id,
    direction,
    from_number,
    to_number,
    status,
    call_type,
    hangup_cause,
    cast(duration_seconds as {{ dbt.type_int() }}) as duration_seconds,
    cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
    cast(answered_at as {{ dbt.type_timestamp() }}) as answered_at,
    cast(ended_at as {{ dbt.type_timestamp() }}) as ended_at,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
    vobiz_loaded_at as loaded_at
from live
