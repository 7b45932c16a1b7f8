{#- One row per channel and UTC day with activity (int_vobiz__channel_days), with the channel's number. -#}
select
    days.*,
    channels.phone_number
from {{ ref('int_vobiz__channel_days') }} as days
left join {{ ref('stg_vobiz__channels') }} as channels on days.channel_id = channels.channel_id
