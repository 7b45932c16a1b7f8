with live as (
    {{ vobiz_live_rows('messages') }}
)

select
    id as message_id,
    account_id,
    conversation_id,
    channel_id,
    contact_id,
    direction,
    type as message_type,
    status,
    cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
    meta_message_id,
    content,
    {{ vobiz_json_text('content_json', 'body') }} as body,
    coalesce(
        {{ vobiz_json_text('content_json', 'caption') }},
        {{ vobiz_json_text('content_json', 'image.caption') }},
        {{ vobiz_json_text('content_json', 'video.caption') }},
        {{ vobiz_json_text('content_json', 'document.caption') }}
    ) as media_caption,
    coalesce(
        {{ vobiz_json_text('content_json', 'filename') }},
        {{ vobiz_json_text('content_json', 'document.filename') }}
    ) as media_filename,
    coalesce(
        {{ vobiz_json_text('content_json', 'mime_type') }},
        {{ vobiz_json_text('content_json', 'image.mime_type') }},
        {{ vobiz_json_text('content_json', 'video.mime_type') }},
        {{ vobiz_json_text('content_json', 'audio.mime_type') }},
        {{ vobiz_json_text('content_json', 'document.mime_type') }},
        {{ vobiz_json_text('content_json', 'sticker.mime_type') }}
    ) as media_mime_type,
    case when type = 'template' then {{ vobiz_json_text('content_json', 'name') }} end as template_name,
    -- Meta's object form ({"code": "en_US", "policy": "deterministic"}) or a plain code.
    case
        when type = 'template'
        then coalesce(
            {{ vobiz_json_scalar('content_json', 'language.code') }},
            {{ vobiz_json_scalar('content_json', 'language') }}
        )
    end as template_language,
    vobiz_loaded_at as loaded_at
from live
