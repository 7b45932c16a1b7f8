"""The emulator's webhooks: the subscription API's records and a sender of signed deliveries.

For its own activity (`POST /_emulator/activity`: status changes of messages and of campaign
recipients, new messages, new calls) the emulator builds the envelopes Vobiz documents
(`event_id`, `event_type`, `account_id`, `occurred_at`, `payload` holding the Meta webhook:
`message.status`, `message.inbound`, `call.connect`/`call.status_change`/`call.terminate`),
signs each body for each subscription (`tap_vobiz.webhook_signature`) and POSTs it from
worker threads. With no subscription nothing is built, and the sender has a random generator
of its own: the dataset, and so everything the API serves, is the same with or without it.

What the docs allow and leave open, on demand (`DeliveryOptions`, `POST /_emulator/webhooks`):
retries of the same `event_id` and bytes after a timeout, a connection error or any answer
but 2xx (a slow or failing receiver); duplicates (the same delivery again after its 2xx);
events sent out of order; and WhatsApp-level repeats (the same payload under a new
`event_id`). Every envelope built and every attempt is recorded (`GET /_emulator/webhooks`), so
a test knows exactly what a receiver should hold.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import random
import threading
import time
import typing as t
import uuid
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import requests

from tap_vobiz.webhook_signature import EVENT_HEADER, SIGNATURE_HEADER, sign
from vobiz_emulator.account_data import ACCOUNT_ID, rfc3339

if t.TYPE_CHECKING:
    from vobiz_emulator.dataset import Dataset

# A webhook event before its envelope: `event_type`, `payload`, `occurred_at`.
Event = tuple[str, dict, str]
META_ERROR = {
    "code": 131049,
    "title": "This message was not delivered to maintain healthy ecosystem engagement.",
    "message": "This message was not delivered to maintain healthy ecosystem engagement.",
    "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed."},
    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
}


@dataclass
class DeliveryOptions:
    """How the sender delivers: what the docs allow and leave open."""

    duplicate_rate: float = 0.0  # share of deliveries sent once more after their 2xx, same bytes
    repeat_rate: float = 0.0  # share of events WhatsApp repeats: same payload, a new event_id
    reorder: bool = False  # each activity's events sent in a shuffled order
    timeout_seconds: float = 5.0  # the "short per-delivery timeout"
    max_attempts: int = 5
    retry_seconds: float = 0.05  # the first retry's wait, doubled for each next one
    workers: int = 4
    seed: int = 0


@dataclass
class Subscription:
    id: str
    url: str
    secret: str
    status: str
    created_at: str
    updated_at: str

    def record(self) -> dict:
        """As the API answers: without the secret."""
        return {name: value for name, value in asdict(self).items() if name != "secret"}


@dataclass
class Delivery:
    subscription: Subscription
    event_id: str
    body: bytes
    event_type: str
    attempt: int = 1
    repeat: bool = False  # a duplicate of a delivery that already succeeded


def subscription_error(payload: dict) -> str | None:
    """Why a `POST /webhooks` body is refused (400; the docs give no error codes or bodies)."""
    url, secret = payload.get("url"), payload.get("secret")
    if not isinstance(url, str) or not url or not isinstance(secret, str) or not secret:
        return "url and secret are required"
    parts = urlsplit(url)
    # HTTPS as documented; plain http only to this machine, where the tests' receivers listen.
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}
    ):
        return "url must be an https URL"
    return None


class WebhookSender:
    """The account's subscriptions, and the threads that deliver its events to them."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.options = DeliveryOptions()
        self.rng = random.Random(0)
        self.events: list[dict] = []  # every envelope built: event_id, event_type, body, repeat_of
        self.attempts: list[dict] = []  # every POST: event_id, url, attempt, outcome
        self.lock = threading.Lock()
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._timers: set[threading.Timer] = set()
        self._workers: list[threading.Thread] = []

    # The subscription API

    def subscribe(self, url: str, secret: str, now: dt.datetime) -> dict:
        stamp = rfc3339(now)
        subscription = Subscription(str(uuid.uuid4()), url, secret, "active", stamp, stamp)
        with self.lock:
            self.subscriptions[subscription.id] = subscription
        return subscription.record()

    def listing(self) -> dict:
        with self.lock:
            return {"items": [subscription.record() for subscription in self.subscriptions.values()]}

    def unsubscribe(self, subscription_id: str) -> bool:
        with self.lock:
            return self.subscriptions.pop(subscription_id, None) is not None

    def configure(self, options: dict) -> None:
        with self.lock:
            self.options = DeliveryOptions(**options)
            self.rng = random.Random(self.options.seed)

    # Events

    def activity(self, dataset: Dataset, result: dict, before: dt.datetime) -> int:
        """Build and queue the events of one `add_activity` (its `result`); how many were built."""
        if not self.subscriptions:
            return 0
        events = ActivityEvents(dataset, self.rng, before).build(result)
        return self.send(events)

    def statuses(self, dataset: Dataset, messages: list[dict], at: dt.datetime) -> int:
        """Queue a `message.status` for each message's current status, at `at` (`set_status`)."""
        if not self.subscriptions:
            return 0
        events = ActivityEvents(dataset, self.rng, at)
        events.lookups()
        for message in messages:
            events.add_status(message, message["status"], at)
        return self.send(events.events)

    def send(self, events: list[Event]) -> int:
        """Queue envelopes (`event_type`, `payload`, `occurred_at`) for every subscription, as the
        options say; how many envelopes (repeats included)."""
        with self.lock:
            envelopes = []
            for event_type, payload, occurred in events:
                envelopes.append(self._envelope(event_type, payload, occurred, None))
                if self.rng.random() < self.options.repeat_rate:
                    # WhatsApp's repeat, processed by Vobiz again a little later.
                    later = rfc3339(_parse(occurred) + dt.timedelta(seconds=self.rng.randint(1, 60)))
                    envelopes.append(self._envelope(event_type, payload, later, envelopes[-1]["event_id"]))
            if self.options.reorder:
                self.rng.shuffle(envelopes)
            subscriptions = [s for s in self.subscriptions.values() if s.status == "active"]
            self._start_workers()
        for envelope in envelopes:
            for subscription in subscriptions:
                body = envelope["body"].encode()
                self._queue.put(Delivery(subscription, envelope["event_id"], body, envelope["event_type"]))
        return len(envelopes)

    def _envelope(self, event_type: str, payload: dict, occurred: str, repeat_of: str | None) -> dict:
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        envelope = {
            "event_id": event_id,
            "event_type": event_type,
            "account_id": ACCOUNT_ID,
            "occurred_at": occurred,
            "payload": payload,
        }
        record = {
            "event_id": event_id,
            "event_type": event_type,
            "body": json.dumps(envelope, separators=(",", ":"), ensure_ascii=False),
            "repeat_of": repeat_of,
        }
        self.events.append(record)
        return record

    # Delivery

    def _start_workers(self) -> None:
        while len(self._workers) < self.options.workers:
            worker = threading.Thread(target=self._deliver_forever, daemon=True, name="webhook-sender")
            worker.start()
            self._workers.append(worker)

    def _deliver_forever(self) -> None:
        session = requests.Session()
        session.trust_env = False
        while True:
            delivery = self._queue.get()
            try:
                self._deliver(session, delivery)
            finally:
                self._queue.task_done()

    def _deliver(self, session: requests.Session, delivery: Delivery) -> None:
        subscription = delivery.subscription
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(subscription.secret, delivery.body),
            EVENT_HEADER: delivery.event_type,
            "User-Agent": "vobiz-emulator-webhooks",
        }
        try:
            response = session.post(
                subscription.url, data=delivery.body, headers=headers, timeout=self.options.timeout_seconds
            )
            outcome: int | str = response.status_code
            delivered = 200 <= response.status_code < 300
        except requests.RequestException as error:
            outcome, delivered = type(error).__name__, False
        with self.lock:
            self.attempts.append(
                {
                    "event_id": delivery.event_id,
                    "url": subscription.url,
                    "attempt": delivery.attempt,
                    "duplicate": delivery.repeat,
                    "outcome": outcome,
                }
            )
            options = self.options
            again = delivered and not delivery.repeat and self.rng.random() < options.duplicate_rate
        if again:
            self._queue.put(
                Delivery(subscription, delivery.event_id, delivery.body, delivery.event_type, repeat=True)
            )
        elif not delivered and delivery.attempt < options.max_attempts:
            wait = options.retry_seconds * 2 ** (delivery.attempt - 1)
            retry = Delivery(
                subscription, delivery.event_id, delivery.body, delivery.event_type, delivery.attempt + 1
            )
            self._later(wait, retry)

    def _later(self, seconds: float, delivery: Delivery) -> None:
        """Queue a retry after `seconds`; counted as pending meanwhile (`wait`)."""
        with self._queue.all_tasks_done:
            self._queue.unfinished_tasks += 1

        def put() -> None:
            self._queue.put(delivery)
            self._queue.task_done()
            self._timers.discard(timer)

        timer = threading.Timer(seconds, put)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def wait(self, timeout: float) -> bool:
        """Whether every queued delivery (retries included) was made or given up within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def report(self) -> dict:
        with self.lock:
            return {
                "subscriptions": [subscription.record() for subscription in self.subscriptions.values()],
                "options": asdict(self.options),
                "events": list(self.events),
                "attempts": list(self.attempts),
                "pending": self._queue.unfinished_tasks,
            }


@dataclass
class ActivityEvents:
    """The webhook events of one `add_activity`, as Vobiz would send them."""

    dataset: Dataset
    rng: random.Random
    before: dt.datetime
    events: list[Event] = field(default_factory=list)

    def lookups(self) -> None:
        account = self.dataset.account
        self.channels = {row["id"]: row for row in account.channels}
        self.contacts = {row["id"]: row for row in account.contacts.rows}

    def build(self, result: dict) -> list[Event]:
        self.lookups()
        wanted = set(result.get("new_messages", ())) | set(result.get("status_changes", ()))
        found = {
            message["id"]: message
            for conversation in self.dataset.conversations
            for message in conversation.messages
            if message["id"] in wanted
        }
        for message_id in result.get("new_messages", ()):
            self._new_message(found[message_id])
        new = set(result.get("new_messages", ()))
        # A new message's events already end at its current status.
        for message_id in [m for m in result.get("status_changes", ()) if m not in new]:
            message = found[message_id]
            low = max(self.before, _parse(message["created_at"]))
            self.add_status(
                message, message["status"], self._between(low + dt.timedelta(seconds=1), self.dataset.now)
            )
        campaigns = self.dataset.campaign_data
        changed = set(result.get("recipient_changes", ()))
        channel_of = {campaign["id"]: campaign["channel_id"] for campaign in campaigns.campaigns}
        for campaign_id, rows in campaigns.recipients.items():
            for recipient in rows:
                if recipient["id"] in changed:
                    self._recipient_status(recipient, channel_of.get(campaign_id, ""))
        new_calls = set(result.get("new_calls", ()))
        for call in campaigns.call_logs.rows:
            if call["id"] in new_calls:
                self._call(call)
        self.events.sort(key=lambda event: event[2])
        return self.events

    def _between(self, low: dt.datetime, high: dt.datetime) -> dt.datetime:
        span = max((high - low).total_seconds() - 1, 0.0)
        return low + dt.timedelta(seconds=int(self.rng.uniform(0, span)))

    def _value(self, channel_id: str) -> dict:
        channel = self.channels.get(channel_id) or next(iter(self.channels.values()))
        return {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": channel["phone_number"].lstrip("+"),
                "phone_number_id": channel["phone_number_id"],
            },
        }

    def _add(self, event_type: str, channel_id: str, field_name: str, value: dict, at: dt.datetime) -> None:
        waba_id = (self.channels.get(channel_id) or next(iter(self.channels.values())))["waba_id"]
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": field_name, "value": value}]}],
        }
        # Vobiz processes the event a moment after WhatsApp's time.
        occurred = rfc3339(at + dt.timedelta(seconds=self.rng.randint(0, 3)))
        self.events.append((event_type, payload, occurred))

    def _new_message(self, message: dict) -> None:
        if not message.get("meta_message_id"):
            return
        created = _parse(message["created_at"])
        if message["direction"] == "inbound":
            contact = self.contacts.get(message["contact_id"], {})
            phone = str(contact.get("phone_number", "")).lstrip("+")
            value = self._value(message["channel_id"])
            value["contacts"] = [{"wa_id": phone, "profile": {"name": contact.get("name", "")}}]
            value["messages"] = [
                {
                    "from": phone,
                    "id": message["meta_message_id"],
                    "timestamp": _unix(created),
                    "type": message["type"],
                    message["type"]: _content(message["content"]),
                }
            ]
            self._add("message.inbound", message["channel_id"], "messages", value, created)
            return
        steps = {"sent": ("sent",), "delivered": ("sent", "delivered"), "read": ("sent", "delivered", "read")}
        at = created
        for status in steps.get(message["status"], ("failed",) if message["status"] == "failed" else ()):
            self.add_status(message, status, at)
            at = min(
                self._between(at + dt.timedelta(seconds=2), at + dt.timedelta(seconds=600)), self.dataset.now
            )

    def add_status(self, message: dict, status: str, at: dt.datetime) -> None:
        if not message.get("meta_message_id"):
            return
        contact = self.contacts.get(message["contact_id"], {})
        entry: dict[str, t.Any] = {
            "id": message["meta_message_id"],
            "status": status,
            "timestamp": _unix(at),
            "recipient_id": str(contact.get("phone_number", "")).lstrip("+"),
        }
        conversation_id = message.get("conversation_id")
        if status in {"sent", "delivered"} and conversation_id:
            category = self.dataset.by_id[conversation_id].record["category"]
            entry["conversation"] = {"id": conversation_id.replace("-", ""), "origin": {"type": category}}
            entry["pricing"] = {
                "billable": True,
                "pricing_model": "PMP",
                "type": "regular",
                "category": category,
            }
        if status == "failed":
            entry["errors"] = [dict(META_ERROR)]
        value = self._value(message["channel_id"])
        value["statuses"] = [entry]
        self._add("message.status", message["channel_id"], "messages", value, at)

    def _recipient_status(self, recipient: dict, channel_id: str) -> None:
        status = recipient["status"]
        if not recipient.get("meta_message_id") or status not in {"sent", "delivered", "read", "failed"}:
            return
        at = _parse(recipient.get(f"{status}_at") or recipient["updated_at"])
        entry: dict[str, t.Any] = {
            "id": recipient["meta_message_id"],
            "status": status,
            "timestamp": _unix(at),
            "recipient_id": recipient["phone_number"].lstrip("+"),
        }
        if status == "failed":
            entry["errors"] = [{**META_ERROR, "code": recipient.get("error_code") or META_ERROR["code"]}]
        value = self._value(channel_id)  # the campaign's channel sent it
        value["statuses"] = [entry]
        self._add("message.status", channel_id, "messages", value, at)

    def _call(self, call: dict) -> None:
        channel = self.channels.get(call["channel_id"]) or next(iter(self.channels.values()))
        base = {
            "id": call["meta_call_id"],
            "from": call["from_number"].lstrip("+"),
            "to": call["to_number"].lstrip("+"),
            "direction": "USER_INITIATED" if call["direction"] == "inbound" else "BUSINESS_INITIATED",
        }
        started = _parse(call["started_at"])
        moments = [("call.connect", "connect", "RINGING", started)]
        if call.get("answered_at"):
            moments.append(("call.status_change", "status_change", "ACCEPTED", _parse(call["answered_at"])))
        if call.get("ended_at"):
            moments.append(("call.terminate", "terminate", "COMPLETED", _parse(call["ended_at"])))
        for event_type, event, status, at in moments:
            detail = {**base, "timestamp": _unix(at), "event": event, "status": status}
            if event == "connect":
                detail["session"] = {"sdp_type": "offer", "sdp": call.get("offer_sdp") or ""}
            value = self._value(channel["id"])
            value["calls"] = [detail]
            self._add(event_type, channel["id"], "calls", value, at)


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _unix(moment: dt.datetime) -> str:
    return str(int(moment.timestamp()))


def _content(content: str) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return {"body": content}
