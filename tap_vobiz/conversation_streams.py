"""The conversations API: conversations, and the messages of each conversation."""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th

from tap_vobiz import run_report
from tap_vobiz.decoding import decode_json, parse_timestamp
from tap_vobiz.incremental import WindowedStream, window_end
from tap_vobiz.page_lists import IncrementalPageListStream, ListOutcome, warn_unsettled
from tap_vobiz.pagination import CursorPaginator
from tap_vobiz.schema_types import (
    ACCOUNT_ID,
    MALFORMED_FIELDS_PROPERTY,
    FreeFormObjectType,
    enum,
    id_property,
)
from tap_vobiz.settings import DEFAULT_PAGE_SIZE

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

    from tap_vobiz.incremental import SyncWindow


class ConversationsStream(IncrementalPageListStream):
    """WhatsApp conversations: one per channel, contact and 24-hour conversation window.

    The API has no time filter and a conversation closes without a timestamp saying so:
    the whole list is read (`tap_vobiz.page_lists`: one list today, or paged by cursor or
    page numbers, whichever its envelope offers), and the conversations that can be new,
    can have changed status, or can hold messages not yet extracted are emitted: those
    whose window reaches the horizon (see `tap_vobiz.incremental`).
    """

    name = "conversations"
    path = "/conversations"
    replication_key = "started_at"
    change_fields = ("started_at",)
    _messages_window: SyncWindow | None = None
    _to_read = 0

    schema = th.PropertiesList(
        id_property("Conversation id (UUID); `conversation_id` in messages."),
        ACCOUNT_ID,
        th.Property(
            "channel_id", th.StringType, description="WhatsApp channel the conversation belongs to (UUID)."
        ),
        th.Property("contact_id", th.StringType, description="Customer contact (UUID)."),
        th.Property(
            "category",
            th.StringType,
            description=enum(
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
            description=enum("Whether the conversation window is still open.", ["open", "closed"]),
        ),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    def start_reading(self) -> bool:
        """Open the window; ACTIVATE_VERSION only when the catalog asks for FULL_TABLE (the API
        deletes no conversation: an incremental run read without state sends none)."""
        self.open_window()
        messages: MessagesStream = self._tap.streams["messages"]  # type: ignore[assignment]
        self._messages_window = messages.planned_window() if messages.selected else None
        self._to_read = 0
        return self.full_table

    def keeps(self, row: dict[str, t.Any]) -> bool:
        ends = window_end(row)
        if self._messages_window is not None and self._messages_window.includes(ends):
            self._to_read += 1
        return self._window is None or self._window.includes(ends)

    def finish_reading(self, *, settled: bool) -> None:
        if self._messages_window is not None:
            # For the messages stream's progress: how many conversations it is to read.
            messages: MessagesStream = self._tap.streams["messages"]  # type: ignore[assignment]
            messages.conversations_to_read = self._to_read
        super().finish_reading(settled=settled)

    def list_conversation_ids(self, outcome: ListOutcome) -> t.Iterator[tuple[str, dt.datetime | None]]:
        """Every conversation id in the account's list, with the end of its window."""
        for page in self.read_list(None, keeps=lambda row: True, outcome=outcome):
            for record in page:
                conversation_id = record.get("id")
                if isinstance(conversation_id, str) and conversation_id:
                    yield conversation_id, window_end(record)


class MessagesStream(WindowedStream):
    """WhatsApp messages of the conversations that can hold new or changed ones."""

    name = "messages"
    path = "/conversations/{conversation_id}/messages"
    parent_name = "conversation"
    replication_key = "created_at"
    # Set by the conversations stream when it has read the whole list (progress logging only).
    conversations_to_read: int | None = None

    schema = th.PropertiesList(
        id_property("Message id (UUID)."),
        ACCOUNT_ID,
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
        th.Property("direction", th.StringType, description=enum("Who sent it.", ["inbound", "outbound"])),
        th.Property(
            "type",
            th.StringType,
            description=enum(
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
            description=enum(
                "Delivery status; changes after creation.",
                ["pending", "sent", "delivered", "read", "failed"],
                {"queued": "a guide's name for `pending`: not sent yet"},
            ),
        ),
        th.Property(
            "content",
            th.StringType,
            description="The message payload exactly as received: a JSON-encoded string.",
        ),
        th.Property(
            "content_json",
            FreeFormObjectType(),
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

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict:
        return {
            "limit": self.config.get("page_size", DEFAULT_PAGE_SIZE),
            **super().get_url_params(context, next_page_token),
        }

    def get_new_paginator(self) -> CursorPaginator:
        horizon = self._window.horizon if self._window else None
        return CursorPaginator(stop_before=horizon, timestamp_field="created_at")

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The messages at or after the horizon, in the conversations whose window reaches it.

        Every other conversation costs no request; in one that is read, paging stops
        after the first page that reaches back past the horizon (pages run newest first).
        Up to `max_workers` conversations are fetched at once (`tap_vobiz.concurrency`);
        records still come out in the order a sequential run emits them.
        """
        window = self.open_window()
        version = self._begin_table_version() if self.full_table else None
        conversations: ConversationsStream = self._tap.streams["conversations"]  # type: ignore[assignment]
        outcome = ListOutcome()
        to_read = (
            conversation_id
            for conversation_id, ends in conversations.list_conversation_ids(outcome)
            if window.includes(ends)
        )
        yield from self.read_lists(
            ({"conversation_id": conversation_id} for conversation_id in to_read),
            self._fetch_pages,
            lists_to_read=lambda: self.conversations_to_read,
        )
        if outcome.settled:
            if version is not None:
                self._write_activate_version_message(version)
            self.close_window()
        else:
            # A conversation may have slipped between the list's pages: its messages were not read.
            warn_unsettled(self.logger, self.name, outcome)
            self._window = None

    def _fetch_pages(self, context: Context | None) -> t.Iterator[list[dict[str, t.Any]]]:
        """A conversation's messages at or after the horizon, a page at a time (runs on a worker)."""
        assert context is not None
        conversation_id = context["conversation_id"]
        window = self._window
        page_size = int(self.config.get("page_size", DEFAULT_PAGE_SIZE))
        page: list[dict[str, t.Any]] = []
        for record in self.request_records(context):
            if window is None or window.includes(parse_timestamp(record.get("created_at"))):
                record[_READ_UNDER] = conversation_id
                page.append(record)
                if len(page) == page_size:
                    yield page
                    page = []
        if page:
            yield page

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        read_under = row.pop(_READ_UNDER, None)
        record = super().post_process(row, context)
        if record is None:
            return None
        if not record.get("conversation_id"):
            record["conversation_id"] = read_under
        record["content_json"] = parse_content(record.get("content"))
        if record["content_json"] is None and record.get("content") is not None:
            self.report.add(run_report.UNPARSEABLE_CONTENT)
        return record


# Where a message was read, carried from `get_records` to `post_process` (never emitted).
_READ_UNDER = "__read_under_conversation"


def parse_content(content: object) -> dict | None:
    """`content` decoded when it is a JSON-encoded object; None otherwise, never an error."""
    if not isinstance(content, str):
        return None
    try:
        value = decode_json(content)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
