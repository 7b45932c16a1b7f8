{#- One row per contact with messages: how many, and the first and latest in each direction. -#}
{#- Ephemeral: read by vobiz__contacts alone, so it is inlined there (a CTE) instead of written as a
    table and read back; that mart's primary_key test also catches a key this gave twice. -#}
{{ config(materialized='ephemeral') }}

select
    contact_id,
    count(*) as messages,
    min(created_at) as first_message_at,
    max(case when direction = 'inbound' then created_at end) as last_inbound_at,
    -- A failed send never reached the contact.
    max(case when direction = 'outbound' and status <> 'failed' then created_at end) as last_outbound_at
from {{ ref('stg_vobiz__messages') }}
group by contact_id
