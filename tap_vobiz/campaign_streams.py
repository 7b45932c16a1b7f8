"""Broadcast campaigns and the row of each of their recipients.

Both are page-numbered lists with no time filter. `campaigns` is read whole each run (it
is small); `campaign_recipients` reads the recipients only of the campaigns that can
still change, since receipts keep arriving for days after a campaign completes, while a
campaign finished and quiet since the horizon costs no request.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_vobiz.page_lists import IncrementalPageListStream, ListOutcome
from tap_vobiz.pagination import parse_timestamp
from tap_vobiz.schema_types import (
    MALFORMED_FIELDS_PROPERTY,
    FreeFormObjectType,
    enum,
    id_property,
    timestamp,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_vobiz.incremental import SyncWindow

CAMPAIGN_STATUSES = ["draft", "scheduled", "sending", "paused", "completed", "cancelled", "failed"]
# A campaign in any other status (unknown ones included) can still send, or change.
FINISHED_CAMPAIGN_STATUSES = frozenset({"completed", "cancelled", "failed"})
RECIPIENT_STATUSES = ["queued", "sent", "delivered", "read", "failed", "skipped"]


def _count(name: str, description: str) -> th.Property:
    return th.Property(name, th.IntegerType, description=description)


class CampaignsStream(IncrementalPageListStream):
    """Broadcast campaigns: read whole each run; emits those changed since bookmark - lookback_hours."""

    name = "campaigns"
    path = "/campaigns"

    schema = th.PropertiesList(
        id_property("Campaign id (UUID); `campaign_id` in campaign_recipients."),
        th.Property("channel_id", th.StringType, description="The sending channel (UUID)."),
        th.Property("name", th.StringType, description="Campaign name."),
        th.Property("template_id", th.StringType, description="The template sent (UUID)."),
        th.Property("template_name", th.StringType, description="The template's name."),
        th.Property("template_lang", th.StringType, description="The template's language, e.g. `en_US`."),
        th.Property(
            "status",
            th.StringType,
            description=enum(
                "Lifecycle status; `completed` means every recipient was worked through, not "
                "that every send succeeded (receipts keep arriving for days).",
                CAMPAIGN_STATUSES,
            ),
        ),
        _count("total_recipients", "Audience size."),
        _count("sent_count", "Recipients sent to, as Vobiz counts them (updated as receipts arrive)."),
        _count("delivered_count", "Recipients the message was delivered to."),
        _count("read_count", "Recipients who read it."),
        _count("failed_count", "Recipients the send failed for (see their `error_code`)."),
        _count("skipped_count", "Recipients skipped."),
        _count("batch_size", "Recipients per batch."),
        _count("batch_delay_ms", "Delay between batches, in milliseconds."),
        th.Property("pause_reason", th.StringType, description="Why it was paused."),
        timestamp("scheduled_at", "When it is scheduled to start; null if not scheduled"),
        timestamp("started_at", "When sending started; null until then"),
        timestamp("completed_at", "When it completed (or was cancelled or failed); null until then"),
        timestamp("created_at", "When it was created"),
        timestamp("updated_at", "When it, or its counters, last changed"),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()


class CampaignRecipientsStream(IncrementalPageListStream):
    """One row per recipient of a campaign, read for the campaigns that can still change."""

    name = "campaign_recipients"
    path = "/campaigns/{campaign_id}/recipients"
    parent_name = "campaign"
    parent_key = "campaign_id"

    schema = th.PropertiesList(
        id_property("Recipient row id (UUID)."),
        th.Property(
            "campaign_id",
            th.StringType,
            description="The campaign (UUID); filled in from the campaign it was read under when "
            "the API omits it.",
        ),
        th.Property("contact_id", th.StringType, description="The contact (UUID)."),
        th.Property("phone_number", th.StringType, description="The number it was sent to, E.164."),
        th.Property(
            "variables",
            FreeFormObjectType(),
            description="Template variables sent to this recipient, kept whole.",
        ),
        th.Property(
            "status",
            th.StringType,
            description=enum("Delivery status; moves as WhatsApp reports.", RECIPIENT_STATUSES),
        ),
        th.Property("meta_message_id", th.StringType, description="Meta's `wamid`, once sent."),
        th.Property(
            "error_code",
            th.StringType,
            description="Meta's error code on failure, e.g. `131026` (not on WhatsApp), `131042` (payment).",
        ),
        th.Property("error_desc", th.StringType, description="Meta's error text."),
        timestamp("sent_at", "When it was sent; null until then"),
        timestamp("delivered_at", "When it was delivered; null until then"),
        timestamp("read_at", "When it was read; null until then"),
        timestamp("created_at", "When the row was created"),
        timestamp("updated_at", "When its status last changed"),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    def list_contexts(self, outcome: ListOutcome) -> t.Iterable[Context | None]:
        """The campaigns whose recipients can have changed since the horizon; the others cost nothing."""
        campaigns: CampaignsStream = self._tap.streams["campaigns"]  # type: ignore[assignment]
        window = self._window
        return ({"campaign_id": row["id"]} for row in campaigns.all_rows(outcome) if can_change(row, window))


def can_change(campaign: dict[str, t.Any], window: SyncWindow | None) -> bool:
    """Whether a campaign's recipients can hold rows changed since the window's horizon.

    Yes if it is not finished (`draft`, `scheduled`, `sending`, `paused`, or a status not
    known yet), or it changed, started or completed since the horizon: a finished
    campaign's receipts move its counters, and so its `updated_at`.
    """
    if window is None or window.horizon is None or campaign.get("status") not in FINISHED_CAMPAIGN_STATUSES:
        return True
    return (
        any(
            window.includes(moment)
            for name in ("updated_at", "started_at", "completed_at")
            if (moment := parse_timestamp(campaign.get(name))) is not None
        )
        or parse_timestamp(campaign.get("updated_at")) is None
    )
