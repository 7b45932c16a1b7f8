"""The account's dimensions: WhatsApp channels, their templates, contacts, canned responses.

Each is a page-numbered list read whole every run (`tap_vobiz.page_lists`): channels,
templates and canned responses are small and full-table (ACTIVATE_VERSION reflects
deletions); contacts can be large and emit only the rows changed since the bookmark.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_vobiz.fan_out import Parent
from tap_vobiz.page_lists import IncrementalPageListStream, PageListStream
from tap_vobiz.schema_types import (
    ACCOUNT_ID,
    MALFORMED_FIELDS_PROPERTY,
    FreeFormObjectType,
    enum,
    id_property,
    timestamp,
)

if t.TYPE_CHECKING:
    pass

CREATED_AT = timestamp("created_at", "When it was created")
UPDATED_AT = timestamp("updated_at", "When it was last changed")


class ChannelsStream(PageListStream):
    """The account's WhatsApp numbers (`channel_id` everywhere else)."""

    name = "channels"
    path = "/channels/whatsapp"

    schema = th.PropertiesList(
        id_property("Channel id (UUID); `channel_id` in the other streams."),
        ACCOUNT_ID,
        th.Property("waba_id", th.StringType, description="Meta WhatsApp Business Account id."),
        th.Property("phone_number_id", th.StringType, description="Meta's phone-number id."),
        th.Property("phone_number", th.StringType, description="The WhatsApp number, E.164."),
        th.Property(
            "number_onboarding_mode",
            th.StringType,
            description=enum(
                "How the number joined Vobiz.", ["buy_from_vobiz", "bring_your_own", "embedded_signup"]
            ),
        ),
        th.Property(
            "number_provider", th.StringType, description="Who provides the number, e.g. `meta_direct`."
        ),
        th.Property(
            "number_order_id",
            th.StringType,
            description="The Vobiz number order it came from (UUID), if any.",
        ),
        th.Property(
            "verification_status",
            th.StringType,
            description=enum("Meta's verification of the number.", ["verified", "pending", "rejected"]),
        ),
        th.Property("display_name", th.StringType, description="Business display name."),
        th.Property("business_profile", th.StringType, description="Business profile text (may be empty)."),
        th.Property(
            "status", th.StringType, description=enum("Channel status.", ["active", "inactive", "suspended"])
        ),
        CREATED_AT,
        UPDATED_AT,
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()


class TemplatesStream(PageListStream):
    """Each channel's WhatsApp message templates (`template_id` in campaigns)."""

    name = "templates"
    path = "/channels/{channel_id}/templates"
    parent = Parent("channels", "channel_id")

    schema = th.PropertiesList(
        id_property("Template id (UUID); `template_id` in campaigns."),
        ACCOUNT_ID,
        th.Property(
            "channel_id",
            th.StringType,
            description="The channel that owns it (UUID); filled in from the channel it was read "
            "under when the API omits it.",
        ),
        th.Property("waba_id", th.StringType, description="Meta WhatsApp Business Account id."),
        th.Property("meta_template_id", th.StringType, description="Meta's template id."),
        th.Property("name", th.StringType, description="Template name (lowercase_snake_case)."),
        th.Property("language", th.StringType, description="Language code, e.g. `en_US`."),
        th.Property(
            "category",
            th.StringType,
            description=enum("Meta template category.", ["MARKETING", "UTILITY", "AUTHENTICATION"]),
        ),
        th.Property(
            "status",
            th.StringType,
            description=enum(
                "Meta review status.",
                ["APPROVED", "PENDING_REVIEW", "REJECTED", "DISABLED", "PAUSED"],
                {"PENDING": "today's `PENDING_REVIEW`: waiting for Meta's review"},
            ),
        ),
        th.Property(
            "components",
            FreeFormObjectType(),
            description='Meta\'s component structure, kept whole: `{"components": [{"type": '
            '"BODY", "text": ...}, ...]}`.',
        ),
        th.Property(
            "quality_score", th.StringType, description="Meta quality rating, e.g. `GREEN`, `UNKNOWN`."
        ),
        CREATED_AT,
        UPDATED_AT,
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()


class ContactsStream(IncrementalPageListStream):
    """The customers. Read whole each run (no time filter exists); emits those changed since the bookmark."""

    name = "contacts"
    path = "/contacts"
    # Messages, conversations and recipients point at contacts: all of them, whatever start_date says.
    honours_start_date = False

    schema = th.PropertiesList(
        id_property("Contact id (UUID); `contact_id` in the other streams."),
        ACCOUNT_ID,
        th.Property("phone_number", th.StringType, description="Phone number, E.164."),
        th.Property("name", th.StringType, description="Contact name."),
        th.Property("tags", th.ArrayType(th.StringType), description="Tags, used to target campaigns."),
        th.Property(
            "custom_attributes", FreeFormObjectType(), description="Free key/value metadata, kept whole."
        ),
        timestamp("last_active_at", "Latest activity; null for a contact that never had any"),
        CREATED_AT,
        UPDATED_AT,
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()


class CannedResponsesStream(PageListStream):
    """Agents' saved replies. Created and deleted, never updated (no `updated_at`)."""

    name = "canned_responses"
    path = "/canned-responses"

    schema = th.PropertiesList(
        id_property("Canned response id (UUID)."),
        th.Property("shortcut", th.StringType, description="What agents type, e.g. `/greeting`."),
        th.Property("content", th.StringType, description="The text it inserts."),
        CREATED_AT,
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()
