"""The conversations API: conversations, and the messages of each conversation."""

from __future__ import annotations

import contextvars
import datetime as dt
import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_vobiz import run_report
from tap_vobiz.decoding import decode_json, parse_timestamp
from tap_vobiz.fan_out import ListOutcome, Parent, ParentList, warn_unsettled
from tap_vobiz.incremental import window_end
from tap_vobiz.page_lists import IncrementalPageListStream
from tap_vobiz.pagination import CursorPaginator
from tap_vobiz.resume import ResumableFanOut
from tap_vobiz.schema_types import (
    ACCOUNT_ID,
    MALFORMED_FIELDS_PROPERTY,
    FreeFormObjectType,
    enum,
    id_property,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record


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

    @override
    def start_reading(self) -> bool:
        """Open the window; ACTIVATE_VERSION only when the catalog asks for FULL_TABLE (the API
        deletes no conversation: an incremental run read without state sends none)."""
        self.open_window()
        return self.full_table

    @override
    def keeps(self, row: dict[str, t.Any]) -> bool:
        return self._window is None or self._window.includes(window_end(row))


class MessagesStream(ResumableFanOut):
    """WhatsApp messages of the conversations that can hold new or changed ones."""

    name = "messages"
    path = "/conversations/{conversation_id}/messages"
    parent = Parent("conversations", "conversation_id")
    replication_key = "created_at"
    order_field = "started_at"

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

    @override
    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict:
        return {
            "limit": self.config["page_size"],
            **super().get_url_params(context, next_page_token),
        }

    @override
    def get_new_paginator(self) -> CursorPaginator:
        """Pages stop after the first that reaches back past the time the list is read from."""
        return CursorPaginator(stop_before=_READING_SINCE.get(), timestamp_field="created_at")

    @override
    def read_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The messages at or after the horizon, in the conversations whose window reaches it.

        Every other conversation costs no request; in one that is read, paging stops
        after the first page that reaches back past the horizon (pages run newest first).
        Up to `max_workers` conversations are fetched at once (`tap_vobiz.concurrency`);
        records still come out in the order a sequential run emits them.
        """
        self.open_window()
        version = self._begin_table_version() if self.full_table else None
        outcome = ListOutcome()
        lists = self.plan_lists(
            self.parent_rows(outcome),
            reads=lambda row, since: since is None or (ends := window_end(row)) is None or ends >= since,
            outcome=outcome,
        )
        yield from self.read_lists(lists, self._fetch_pages, done=self.list_done)
        if outcome.settled:
            if version is not None:
                self._write_activate_version_message(version)
            self.close_window()
        else:
            warn_unsettled(self.logger, self.name, outcome)
            self._window = None

    def _fetch_pages(self, parent: ParentList | None) -> t.Iterator[list[dict[str, t.Any]]]:
        """A conversation's messages at or after the time it is read from, a page at a time (runs
        on a worker)."""
        assert parent is not None
        since = parent.since
        _READING_SINCE.set(since)
        page_size = int(self.config["page_size"])
        page: list[dict[str, t.Any]] = []
        for record in self.request_records(parent.context):
            if (
                since is None
                or (moment := parse_timestamp(record.get("created_at"))) is None
                or moment >= since
            ):
                page.append(record)
                if len(page) == page_size:
                    yield page
                    page = []
        if page:
            yield page

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        record = super().post_process(row, context)
        if record is None:
            return None
        record["content_json"] = parse_content(record.get("content"))
        if record["content_json"] is None and record.get("content") is not None:
            self.report.add(run_report.UNPARSEABLE_CONTENT)
        return record


# The time the list a worker is reading is read from (its paginator stops there).
_READING_SINCE: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "reading_since", default=None
)


def parse_content(content: object) -> dict | None:
    """`content` decoded when it is a JSON-encoded object; None otherwise, never an error."""
    if not isinstance(content, str):
        return None
    try:
        value = decode_json(content)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
