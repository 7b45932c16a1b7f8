"""The Vobiz streams: conversations, and the messages of each conversation."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from http import HTTPStatus

from singer_sdk import typing as th

from tap_vobiz import run_report
from tap_vobiz.client import VobizStream
from tap_vobiz.errors import ConversationGoneError
from tap_vobiz.malformed_fields import MALFORMED_FIELDS
from tap_vobiz.pagination import CursorPaginator, parse_timestamp

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

MALFORMED_FIELDS_PROPERTY = th.Property(
    MALFORMED_FIELDS,
    th.ObjectType(additional_properties=True),
    description="Values that did not match their field's documented type (e.g. an unparseable "
    "timestamp), exactly as received, keyed by field name; those fields are null. "
    "Null when every field was well-formed.",
)


def _enum(description: str, values: t.Iterable[str]) -> str:
    return f"{description} One of: {', '.join(values)}."


class ConversationsStream(VobizStream):
    """WhatsApp conversations: one per channel, contact and 24-hour conversation window."""

    name = "conversations"
    path = "/conversations"
    primary_keys = ("id",)
    replication_key = "started_at"

    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True, description="Conversation id (UUID)."),
        th.Property("account_id", th.StringType, description="Vobiz account id (`MA_...`)."),
        th.Property(
            "channel_id", th.StringType, description="WhatsApp channel the conversation belongs to (UUID)."
        ),
        th.Property("contact_id", th.StringType, description="Customer contact (UUID)."),
        th.Property(
            "category",
            th.StringType,
            description=_enum(
                "WhatsApp pricing category.", ["service", "marketing", "utility", "authentication"]
            ),
        ),
        th.Property("is_billable", th.BooleanType, description="Billable under WhatsApp pricing."),
        th.Property("started_at", th.DateTimeType, description="Start of the conversation window (UTC)."),
        th.Property(
            "expires_at", th.DateTimeType, description="When the 24-hour conversation window expires (UTC)."
        ),
        th.Property(
            "status",
            th.StringType,
            description=_enum("Whether the conversation window is still open.", ["open", "closed"]),
        ),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every conversation whose window reaches the starting point.

        The API has no time filter and conversations change (`open` -> `closed`) without
        a timestamp, so the whole list is read and a conversation is emitted when its
        window ends at or after the bookmark (or `start_date`): those are the ones that
        can be new, can have changed status, or can hold messages not yet extracted.
        """
        since = self.get_starting_timestamp(context)
        for record in self.request_records(context):
            if since is None:
                yield record
                continue
            window_end = parse_timestamp(record.get("expires_at")) or parse_timestamp(
                record.get("started_at")
            )
            if window_end is None or window_end >= since:
                yield record

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        record = super().post_process(row, context)
        if record is not None:
            self.report.add(run_report.EMITTED_CONVERSATIONS)
        return record

    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return {"conversation_id": record["id"]}


class MessagesStream(VobizStream):
    """WhatsApp messages of each conversation, newest pages first."""

    name = "messages"
    path = "/conversations/{conversation_id}/messages"
    primary_keys = ("id",)
    replication_key = "created_at"
    parent_stream_type = ConversationsStream
    state_partitioning_keys = ("conversation_id",)

    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True, description="Message id (UUID)."),
        th.Property("account_id", th.StringType, description="Vobiz account id (`MA_...`)."),
        th.Property(
            "channel_id", th.StringType, description="WhatsApp channel it was sent or received on (UUID)."
        ),
        th.Property("contact_id", th.StringType, description="Customer contact (UUID)."),
        th.Property(
            "conversation_id",
            th.StringType,
            description="Parent conversation (UUID); filled in from the conversation it was read "
            "under when the API omits it.",
        ),
        th.Property("direction", th.StringType, description=_enum("Who sent it.", ["inbound", "outbound"])),
        th.Property(
            "type",
            th.StringType,
            description=_enum(
                "Message type.",
                [
                    "text",
                    "image",
                    "document",
                    "template",
                    "audio",
                    "video",
                    "sticker",
                    "location",
                    "contacts",
                    "interactive",
                    "button",
                ],
            ),
        ),
        th.Property(
            "status",
            th.StringType,
            description=_enum(
                "Delivery status; changes after creation.",
                ["pending", "sent", "delivered", "read", "failed"],
            ),
        ),
        th.Property(
            "content",
            th.StringType,
            description="The message payload exactly as received: a JSON-encoded string.",
        ),
        th.Property(
            "content_json",
            th.ObjectType(additional_properties=True),
            description="`content` parsed; null when `content` is not a JSON object.",
        ),
        th.Property(
            "meta_message_id",
            th.StringType,
            description="Meta's WhatsApp message id (`wamid...`), when available.",
        ),
        th.Property("created_at", th.DateTimeType, description="When the message was created (UTC)."),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    _stop_before: dt.datetime | None = None

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict:
        return {
            "limit": self.config.get("page_size", 100),
            **super().get_url_params(context, next_page_token),
        }

    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator(stop_before=self._stop_before, timestamp_field="created_at")

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The conversation's messages created at or after its bookmark (or `start_date`).

        Messages at exactly the bookmark are read again, since others may share that
        second; the target upserts them by `id`.
        """
        since = self._stop_before = self.get_starting_timestamp(context)
        try:
            for record in self.request_records(context):
                created = parse_timestamp(record.get("created_at"))
                if since is None or created is None or created >= since:
                    yield record
        except ConversationGoneError as gone:
            # Deleted since the conversation list was read: nothing left to extract.
            self.report.add(run_report.SKIPPED_CONVERSATIONS)
            self.logger.warning("Skipping conversation %s: %s", (context or {}).get("conversation_id"), gone)

    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == HTTPStatus.NOT_FOUND:
            self.report.add(run_report.REQUESTS)
            raise ConversationGoneError(self.response_error_message(response))
        super().validate_response(response)

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        record = super().post_process(row, context)
        if record is None:
            return None
        if not record.get("conversation_id") and context:
            record["conversation_id"] = context["conversation_id"]
        record["content_json"] = parse_content(record.get("content"))
        if record["content_json"] is None and record.get("content") is not None:
            self.report.add(run_report.UNPARSEABLE_CONTENT)
        self.report.add(run_report.EMITTED_MESSAGES)
        return record


def parse_content(content: object) -> dict | None:
    """`content` decoded when it is a JSON-encoded object; None otherwise, never an error."""
    if not isinstance(content, str):
        return None
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
