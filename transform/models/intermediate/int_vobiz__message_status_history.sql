{{ config(enabled=var('vobiz_using_message_statuses', false)) }}

{#- Every status known of every message, one row each, from both sources: the status the API gave
    when the message was last pulled (`status_source` 'api', no time: the API keeps none), and each
    status WhatsApp pushed ('webhook', read from the capture: `vobiz_using_message_statuses`), at
    WhatsApp's own time.
    A pushed status whose message is not pulled yet (it can arrive first) is kept with a null
    `message_id`; a later build, once the message is loaded, joins it on `meta_message_id` = `wamid`. -#}
with messages as (
    select message_id, meta_message_id, status
    from {{ ref('stg_vobiz__messages') }}
),

statuses as (
    select
        message_id,
        meta_message_id as wamid,
        status,
        cast(null as {{ dbt.type_timestamp() }}) as status_at,
        'api' as status_source
    from messages

    union all

    select
        messages.message_id,
        pushed.wamid,
        pushed.status,
        pushed.status_at,
        'webhook' as status_source
    from {{ ref('stg_vobiz__message_statuses') }} as pushed
    left join messages on messages.meta_message_id = pushed.wamid
)

select
    message_id,
    wamid,
    status,
    status_at,
    status_source,
    -- How far along sent -> delivered -> read a status is (failed ends it; played follows read for
    -- a voice note): a pulled status, which has no time, is current only when it is further along
    -- than the latest pushed one (a push the capture missed). Unknown statuses rank lowest.
    case status
        when 'pending' then 0
        when 'sent' then 1
        when 'delivered' then 2
        when 'read' then 3
        when 'failed' then 3
        when 'played' then 4
        else -1
    end as status_rank
from statuses
