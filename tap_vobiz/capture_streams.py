"""The streams read from the webhook capture (`webhook_capture`): deliveries, message statuses, calls.

Vobiz pushes what its API cannot give (a message's `delivered`/`read`/`failed` after the tap's
lookback, and when each happened) as signed webhooks, which the `vobiz-webhooks` receiver writes
to the capture (`tap_vobiz.capture_reader`). These streams make no request: each reads the
capture from its own bookmark, `{"writers": {<writer_id>: {"seq", "offset"}}}`, which moves
once the records of the lines before it were written (the SDK writes a record before it asks
for the next one), so a run stopped anywhere reads at most a batch again, and the keys dedupe it.

Exactly once in the warehouse: `webhook_events` is keyed by Vobiz's `event_id` (a retried
delivery keeps it); `message_statuses` and `call_events` by an id made of WhatsApp's own facts
(the wamid, the status and WhatsApp's timestamp), so a status WhatsApp repeats under a new
`event_id` is the same row. A target upserts on the key; within one run a key is emitted once.

Why a stream here is not a `VobizStream`: that base knows the HTTP API (URL, auth, paging,
retries); these read files, so they are the SDK's plain `Stream`.
"""

from __future__ import annotations

import time
import typing as t

import msgspec
from singer_sdk import typing as th
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from singer_sdk.streams import Stream
from typing_extensions import override

from tap_vobiz import run_report
from tap_vobiz.capture_reader import CaptureReader, CaptureUnreadableError, read_bookmark
from tap_vobiz.client import LOGGED_BAD_RECORDS
from tap_vobiz.decoding import decode_json, without_lone_surrogates
from tap_vobiz.errors import StreamError
from tap_vobiz.malformed_fields import field_checks, set_aside_malformed_fields
from tap_vobiz.record_messages import LeanRecordMessages
from tap_vobiz.run import run_of
from tap_vobiz.schema_types import MALFORMED_FIELDS_PROPERTY, FreeFormObjectType, enum, id_property, timestamp

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

WRITERS_KEY = "writers"
# Counters of the run's final line.
TORN_LINES = "{stream}: " + run_report.TORN_LINES
UNREADABLE_LINES = "{stream}: " + run_report.UNREADABLE_LINES
ENTRIES_WITHOUT_ID = "{stream}: " + run_report.ENTRIES_WITHOUT_ID
REPAIRED_TEXTS = "{stream}: " + run_report.REPAIRED_TEXTS

MESSAGE_STATUS = "message.status"
CALL_PREFIX = "call."


class CapturedLine(msgspec.Struct):
    """One line of a segment: a delivery as the receiver wrote it."""

    v: int
    received_at: str
    body: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)


_LINE = msgspec.json.Decoder(CapturedLine)


class Delivery(t.NamedTuple):
    """A delivery's envelope, with `received_at` and `headers` from the capture."""

    event_id: str
    event_type: object
    account_id: object
    occurred_at: object
    payload: dict[str, t.Any]
    received_at: str
    headers: dict[str, str]
    repaired_texts: int  # lone surrogates in the body, now U+FFFD

    def stamps(self) -> dict[str, t.Any]:
        """The delivery's fields every row made of it carries (`DELIVERY_PROPERTIES`)."""
        return {
            "event_id": self.event_id,
            "account_id": self.account_id,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
        }


def read_delivery(line: bytes) -> Delivery | str:
    """The delivery a capture line holds, or why it holds none."""
    try:
        captured = _LINE.decode(line)
        envelope, repaired = without_lone_surrogates(captured.body, decode_json(captured.body))
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        return f"not a capture line of format v1 ({str(error)[:120]})"
    except RecursionError:  # a receiver on another Python may have decoded deeper than this one
        return "its body is nested too deeply to decode"
    event_id = envelope.get("event_id") if isinstance(envelope, dict) else None
    if type(event_id) is not str or not event_id:
        return "its body is not an envelope with an event_id"
    payload = envelope.get("payload")
    return Delivery(
        event_id,
        envelope.get("event_type"),
        envelope.get("account_id"),
        envelope.get("occurred_at"),
        payload if isinstance(payload, dict) else {},
        captured.received_at,
        captured.headers,
        repaired,
    )


class CaptureUnreadable(StreamError):
    """The capture cannot be listed or read: this stream ends; its bookmark stays where it was."""

    advice = "check webhook_capture (the path or URL, and the permissions to read it), then rerun"


class CaptureStream(LeanRecordMessages, Stream):
    """A stream of rows made from the capture's deliveries, read from its own bookmark."""

    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)
    # Read by `TapVobiz.sync_all`: no catalog is refused (any replication method reads from the bookmark).
    catalog_problem: str | None = None

    def __init__(self, tap: Tap) -> None:
        super().__init__(tap)
        # What the run's streams share, handed down by the tap (`tap_vobiz.run`).
        self.run = run_of(tap)
        self.report = self.run.report
        self._emitted = run_report.emitted(self.name)
        checks = field_checks(self.schema)
        # Arrays of objects (`errors`) are kept as received; the checks know lists of strings only.
        objects = {n for n, p in self.schema["properties"].items() if _get(p, "items", "type") == "object"}
        self._checks = checks._replace(string_lists=tuple(set(checks.string_lists) - objects))
        self._bad_lines_logged = 0
        (self.dedupe_key,) = self.primary_keys

    @property
    @override
    def replication_method(self) -> str:
        """INCREMENTAL, whatever a catalog says: read on from the bookmark, a position in the capture (no
        replication key). A run without state (`--full-refresh`) reads the capture from its start."""
        return REPLICATION_INCREMENTAL

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """Never: a capture may be pruned of old segments, whose rows must stay in the warehouse."""
        return False

    def rows(self, delivery: Delivery) -> t.Iterable[dict[str, t.Any]]:
        """The stream's rows of one delivery."""
        raise NotImplementedError

    def wants(self, delivery: Delivery) -> bool:
        """Whether a delivery can hold rows of this stream (its `event_type`)."""
        return True

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The rows of the deliveries after the bookmark; it moves after each batch's rows were written."""
        state = self.stream_state
        positions, problems = read_bookmark(state.get(WRITERS_KEY))
        if problems:
            self.logger.warning(
                "Ignoring parts of the %s bookmark that are not positions (%s): those writers' segments "
                "are read from their start (their rows are upserted again, not duplicated)",
                self.name,
                "; ".join(problems[:3]),
            )
        location = str(self.config["webhook_capture"])
        # Said once: what was not a position is not kept.
        writers = state[WRITERS_KEY] = {writer: place.to_state() for writer, place in positions.items()}
        seen: set[str] = set()
        reader: CaptureReader | None = None
        try:
            reader = CaptureReader(location, positions, self.logger)
            for batch in reader.batches():
                for line in batch.lines:
                    delivery = self._delivery(line)
                    if delivery is None or not self.wants(delivery):
                        continue
                    for row in self.rows(delivery):
                        if (key := row[self.dedupe_key]) in seen:
                            continue
                        seen.add(key)
                        if malformed := set_aside_malformed_fields(row, self._checks):
                            self.report.add(run_report.MALFORMED_FIELDS, len(malformed))
                        self.report.emitted[self._emitted] += 1
                        yield row
                writers[batch.writer] = batch.position.to_state()
        except CaptureUnreadableError as error:
            self.run.stream_failed(self, CaptureUnreadable(f"the webhook capture cannot be read: {error}"))
        finally:
            if reader is not None and reader.torn_lines:
                self.report.add(TORN_LINES.format(stream=self.name), reader.torn_lines)

    def _delivery(self, line: bytes) -> Delivery | None:
        """A line's delivery; a line that is not one is counted and skipped (the first few logged)."""
        delivery = read_delivery(line)
        if isinstance(delivery, str):
            self._skip_line(delivery)
            return None
        if delivery.repaired_texts and self.wants(delivery):
            self.report.add(REPAIRED_TEXTS.format(stream=self.name), delivery.repaired_texts)
        return delivery

    def _skip_line(self, why: str) -> None:
        self.report.add(UNREADABLE_LINES.format(stream=self.name))
        self._bad_lines_logged += 1
        if self._bad_lines_logged <= LOGGED_BAD_RECORDS:
            self.logger.warning("Skipping a webhook capture line for %s: %s", self.name, why)
        elif self._bad_lines_logged == LOGGED_BAD_RECORDS + 1:
            self.logger.warning("More capture lines skipped for %s; see the counts at the end", self.name)

    @override
    def generate_child_contexts(self, record: Record, context: Context | None) -> t.Iterable[Context | None]:
        """None: no stream is read under these (the SDK's default yields one context per record)."""
        return ()

    @override
    def _increment_stream_state(self, latest_record: Record, *, context: Context | None = None) -> None:
        """No replication key to note: the bookmark is the capture position (`get_records`)."""


def changes(payload: dict[str, t.Any], field: str) -> t.Iterator[dict[str, t.Any]]:
    """The Meta change values of a payload: the whole envelope (`entry[].changes[].value`), or a
    bare value (a payload without `entry`): Vobiz's docs show both."""
    entries = payload.get("entry")
    if entries is None:
        yield payload
        return
    for entry in entries if isinstance(entries, list) else ():
        for change in (entry.get("changes") if isinstance(entry, dict) else None) or ():
            if isinstance(change, dict) and change.get("field", field) == field:
                value = change.get("value")
                if isinstance(value, dict):
                    yield value


def unix_time(value: object) -> object:
    """WhatsApp's `timestamp` (Unix seconds, a string) as RFC 3339 UTC; anything else as received."""
    if type(value) is int or (type(value) is str and value.isascii() and value.isdigit()):
        try:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(value)))
        except (OverflowError, ValueError, OSError):
            return value
    return value


_NOTHING: dict[str, t.Any] = {}


def _object(value: object) -> dict[str, t.Any]:
    """`value` if it is an object, else an empty one (a field Meta left out, or sent as another type)."""
    return value if isinstance(value, dict) else _NOTHING


def _get(value: object, *path: str) -> t.Any:
    for key in path:
        value = _object(value).get(key)
    return value


DELIVERY_PROPERTIES = (
    th.Property("event_id", th.StringType, description="Vobiz's id of the delivery (kept on retries)."),
    th.Property("account_id", th.StringType, description="Vobiz account id (`MA_...`) the event belongs to."),
    timestamp("occurred_at", "When Vobiz processed the event"),
    timestamp("received_at", "When the receiver got the delivery"),
)


class WebhookEventsStream(CaptureStream):
    """Every delivery the receiver captured, once per `event_id`."""

    name = "webhook_events"
    primary_keys = ("event_id",)

    schema = th.PropertiesList(
        th.Property("event_id", th.StringType, required=True, description="Vobiz's id of the delivery."),
        th.Property(
            "event_type",
            th.StringType,
            description=enum("The event.", ["message.inbound", "message.status", "call.<event>"]),
        ),
        *DELIVERY_PROPERTIES[1:],
        th.Property(
            "payload",
            FreeFormObjectType(),
            description="The event's payload as Vobiz sent it: the Meta webhook envelope or its change "
            "`value`.",
        ),
        th.Property(
            "headers",
            FreeFormObjectType(),
            description="The delivery's HTTP headers as received (names lower-cased).",
        ),
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    @override
    def rows(self, delivery: Delivery) -> t.Iterable[dict[str, t.Any]]:
        yield {
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "account_id": delivery.account_id,
            "occurred_at": delivery.occurred_at,
            "received_at": delivery.received_at,
            "payload": delivery.payload,
            "headers": delivery.headers,
        }


def _status_id(wamid: str, status: object, moment: object, participant: object) -> str:
    """The key of a status: the same facts WhatsApp repeats give the same key, whatever the event_id."""
    parts = [wamid, str(status), str(moment)]
    if participant is not None:
        parts.append(str(participant))  # a group send: one status per participant
    return "|".join(parts)


class MessageStatusesStream(CaptureStream):
    """One row per WhatsApp status of a message sent (`message.status` deliveries' `statuses[]`)."""

    name = "message_statuses"

    schema = th.PropertiesList(
        id_property(
            "`<wamid>|<status>|<WhatsApp's timestamp>` (and `|<participant>` in a group): "
            "one row per status however often Vobiz or WhatsApp repeated it."
        ),
        th.Property(
            "wamid",
            th.StringType,
            description="WhatsApp's message id: the `meta_message_id` of the message in `messages`.",
        ),
        th.Property(
            "status", th.StringType, description=enum("The status.", ["sent", "delivered", "read", "failed"])
        ),
        timestamp("status_at", "When the status happened, by WhatsApp's clock (its `timestamp`)"),
        th.Property("recipient_id", th.StringType, description="The customer's number, digits without `+`."),
        th.Property("recipient_participant_id", th.StringType, description="In a group: the participant."),
        th.Property("phone_number_id", th.StringType, description="Meta's id of the channel's number."),
        th.Property("conversation_id", th.StringType, description="Meta's conversation id, if sent."),
        th.Property(
            "conversation_origin_type",
            th.StringType,
            description="The conversation's category (`origin.type`), if sent.",
        ),
        timestamp("conversation_expires_at", "When Meta's conversation window ends, if sent"),
        th.Property("pricing_billable", th.BooleanType, description="Whether it is billed, if sent."),
        th.Property(
            "pricing_model", th.StringType, description="`CBP` (before 2025-07-01) or `PMP`, if sent."
        ),
        th.Property(
            "pricing_type",
            th.StringType,
            description="`regular`, `free_customer_service` or `free_entry_point`, if sent.",
        ),
        th.Property("pricing_category", th.StringType, description="The pricing category, if sent."),
        th.Property(
            "errors",
            th.ArrayType(FreeFormObjectType()),
            description="On `failed`: WhatsApp's errors (`code`, `title`, `message`, `error_data`).",
        ),
        th.Property(
            "biz_opaque_callback_data", th.StringType, description="The tracking data given at send."
        ),
        *DELIVERY_PROPERTIES,
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    @override
    def wants(self, delivery: Delivery) -> bool:
        return delivery.event_type == MESSAGE_STATUS

    @override
    def rows(self, delivery: Delivery) -> t.Iterable[dict[str, t.Any]]:
        for value in changes(delivery.payload, "messages"):
            statuses = value.get("statuses")
            phone_number_id = _object(value.get("metadata")).get("phone_number_id")
            for status in statuses if isinstance(statuses, list) else ():
                wamid = status.get("id") if isinstance(status, dict) else None
                if type(wamid) is not str or not wamid:
                    self.report.add(ENTRIES_WITHOUT_ID.format(stream=self.name))
                    continue
                moment = unix_time(status.get("timestamp"))
                errors = status.get("errors")
                conversation = _object(status.get("conversation"))
                pricing = _object(status.get("pricing"))
                yield {
                    "id": _status_id(
                        wamid, status.get("status"), moment, status.get("recipient_participant_id")
                    ),
                    "wamid": wamid,
                    "status": status.get("status"),
                    "status_at": moment,
                    "recipient_id": status.get("recipient_id"),
                    "recipient_participant_id": status.get("recipient_participant_id"),
                    "phone_number_id": phone_number_id,
                    "conversation_id": conversation.get("id"),
                    "conversation_origin_type": _object(conversation.get("origin")).get("type"),
                    "conversation_expires_at": unix_time(conversation.get("expiration_timestamp")),
                    "pricing_billable": pricing.get("billable"),
                    "pricing_model": pricing.get("pricing_model"),
                    "pricing_type": pricing.get("type"),
                    "pricing_category": pricing.get("category"),
                    "errors": errors if isinstance(errors, list) else None,
                    "biz_opaque_callback_data": status.get("biz_opaque_callback_data"),
                    **delivery.stamps(),
                }


class CallEventsStream(CaptureStream):
    """One row per WhatsApp call event (`call.*` deliveries' `calls[]`)."""

    name = "call_events"

    schema = th.PropertiesList(
        id_property(
            "`<call id>|<event>|<WhatsApp's timestamp>|<status>`: one row per call event "
            "however often it was delivered."
        ),
        th.Property("call_id", th.StringType, description="WhatsApp's call id (`wacid...`)."),
        th.Property("event_type", th.StringType, description="Vobiz's event, e.g. `call.connect`."),
        th.Property("event", th.StringType, description="WhatsApp's event, e.g. `connect`, `terminate`."),
        th.Property("status", th.StringType, description="The call's status, when given."),
        th.Property("direction", th.StringType, description="E.g. `USER_INITIATED`."),
        th.Property("from_number", th.StringType, description="Caller, digits."),
        th.Property("to_number", th.StringType, description="Callee, digits."),
        timestamp("call_event_at", "When it happened, by WhatsApp's clock (its `timestamp`)"),
        th.Property("phone_number_id", th.StringType, description="Meta's id of the channel's number."),
        th.Property(
            "session",
            FreeFormObjectType(),
            description="WebRTC session (`sdp_type`, `sdp`) on connect. Holds network addresses: "
            "deselect it to keep them out of the warehouse.",
        ),
        *DELIVERY_PROPERTIES,
        MALFORMED_FIELDS_PROPERTY,
    ).to_dict()

    @override
    def wants(self, delivery: Delivery) -> bool:
        return isinstance(delivery.event_type, str) and delivery.event_type.startswith(CALL_PREFIX)

    @override
    def rows(self, delivery: Delivery) -> t.Iterable[dict[str, t.Any]]:
        for value in changes(delivery.payload, "calls"):
            calls = value.get("calls")
            for call in calls if isinstance(calls, list) else ():
                call_id = call.get("id") if isinstance(call, dict) else None
                if type(call_id) is not str or not call_id:
                    self.report.add(ENTRIES_WITHOUT_ID.format(stream=self.name))
                    continue
                moment = unix_time(call.get("timestamp"))
                event = call.get("event")
                yield {
                    "id": "|".join((call_id, str(event), str(moment), str(call.get("status")))),
                    "call_id": call_id,
                    "event_type": delivery.event_type,
                    "event": event,
                    "status": call.get("status"),
                    "direction": call.get("direction"),
                    "from_number": call.get("from"),
                    "to_number": call.get("to"),
                    "call_event_at": moment,
                    "phone_number_id": _get(value, "metadata", "phone_number_id"),
                    "session": call.get("session"),
                    **delivery.stamps(),
                }


CAPTURE_STREAM_TYPES: tuple[type[CaptureStream], ...] = (
    WebhookEventsStream,
    MessageStatusesStream,
    CallEventsStream,
)
