{{ config(enabled=var('vobiz_using_message_statuses', false)) }}

{#- Each pulled message's current status: the latest pushed status by WhatsApp's time (never by the
    order deliveries arrived in; on a tie of times the one further along), unless the pulled status
    is further along sent -> delivered -> read (the capture missed a push, or began later). A message
    WhatsApp pushed no status for keeps the pulled one. -#}
with history as (
    select * from {{ ref('int_vobiz__message_status_history') }}
    where message_id is not null
),

latest_pushed as (
    select message_id, status, status_at, status_rank
    from (
        select
            message_id,
            status,
            status_at,
            status_rank,
            row_number() over (
                partition by message_id order by status_at desc, status_rank desc, status
            ) as recency
        from history
        where status_source = 'webhook' and status_at is not null
    ) as ranked
    where recency = 1
),

pulled as (
    select message_id, status, status_rank
    from history
    where status_source = 'api'
)

select
    pulled.message_id,
    case
        when latest_pushed.message_id is null or pulled.status_rank > latest_pushed.status_rank
            then pulled.status
        else latest_pushed.status
    end as status,
    case
        when latest_pushed.message_id is null or pulled.status_rank > latest_pushed.status_rank
            then cast(null as {{ dbt.type_timestamp() }})
        else latest_pushed.status_at
    end as status_at,
    case
        when latest_pushed.message_id is null or pulled.status_rank > latest_pushed.status_rank
            then 'api'
        else 'webhook'
    end as status_source
from pulled
left join latest_pushed on latest_pushed.message_id = pulled.message_id
