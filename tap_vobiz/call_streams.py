"""WhatsApp voice calls: the call log."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_vobiz.page_lists import IncrementalPageListStream
from tap_vobiz.schema_types import (
    ACCOUNT_ID,
    MALFORMED_FIELDS_PROPERTY,
    FreeFormObjectType,
    enum,
    id_property,
    timestamp,
)

CALL_STATUSES = [
    "initiated",
    "ringing",
    "pre_accepted",
    "accepted",
    "rejected",
    "terminated",
    "failed",
    "missed",
]


class CallLogsStream(IncrementalPageListStream):
    """WhatsApp call history. Read whole each run (no time filter, no documented order); emits the calls
    changed since bookmark - lookback_hours.

    `offer_sdp`, `answer_sdp` and `ice_candidates` hold network addresses and are large:
    deselect them in the catalog (`meltano select tap-vobiz '!call_logs.offer_sdp'`) to keep
    them out of the warehouse.
    """

    name = "call_logs"
    path = "/calls/whatsapp/logs"

    schema = th.PropertiesList(
        id_property("Call log id (UUID)."),
        ACCOUNT_ID,
        th.Property("channel_id", th.StringType, description="The channel (UUID)."),
        th.Property("meta_call_id", th.StringType, description="Meta's call id (`wacid...`)."),
        th.Property("direction", th.StringType, description=enum("Who called.", ["inbound", "outbound"])),
        th.Property("from_number", th.StringType, description="Caller, E.164."),
        th.Property("to_number", th.StringType, description="Callee, E.164."),
        th.Property("status", th.StringType, description=enum("Call status.", CALL_STATUSES)),
        th.Property("call_type", th.StringType, description="E.g. `voice`."),
        th.Property(
            "offer_sdp",
            th.StringType,
            description="WebRTC offer session description. Large, and holds network addresses: "
            "deselect it to keep them out of the warehouse.",
        ),
        th.Property(
            "answer_sdp",
            th.StringType,
            description="WebRTC answer session description. Large, and holds network addresses.",
        ),
        th.Property(
            "ice_candidates",
            FreeFormObjectType(),
            description="WebRTC ICE data, kept whole. Holds network addresses.",
        ),
        timestamp("started_at", "When the call started"),
        timestamp("answered_at", "When it was answered; null if it was not (a missed call)"),
        timestamp("ended_at", "When it ended; null while it goes on"),
        th.Property("duration_seconds", th.IntegerType, description="Length of the call; 0 if not answered."),
        th.Property("hangup_cause", th.StringType, description="Why it ended."),
        th.Property("metadata", FreeFormObjectType(), description="More call data, kept whole."),
        timestamp("created_at", "When the log entry was created"),
        timestamp("updated_at", "When the log entry last changed"),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()
