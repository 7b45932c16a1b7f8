"""The emulator's data: deterministic conversations, messages and the account's other lists.

Everything is generated from one seed, on a virtual clock (`now`), so that a given
set of options always yields the same account, and tests can compare a tap's output
with the exact data served. `add_activity` moves the clock forward the way a real
account moves between two scheduled syncs: new conversations and messages, status
changes of recent outbound messages, conversation windows that expire.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field

from vobiz_emulator.account_data import ACCOUNT_ID, AccountData, rfc3339
from vobiz_emulator.campaign_data import CampaignData

WINDOW = dt.timedelta(hours=24)
DEFAULT_NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

CATEGORIES = ("service", "marketing", "utility", "authentication")
MESSAGE_TYPES = (
    ("text", 50),
    ("image", 10),
    ("document", 6),
    ("template", 12),
    ("audio", 4),
    ("video", 3),
    ("sticker", 3),
    ("location", 3),
    ("contacts", 2),
    ("interactive", 4),
    ("button", 3),
)
# Outbound statuses move forward only, in this order ("failed" can follow any but "read").
STATUS_ORDER = ("pending", "sent", "delivered", "read")
TEXT_BODIES = (
    "How can I help?",
    "Hi! I'd like to change my delivery address.",
    'He said "ship it" — is that OK?',
    "Order #4412 hasn't arrived 😟",
    "Line one\nLine two\n\ttabbed",
    "Danke schön, bis später!",
    "ご注文ありがとうございます。",
    "مرحبا، أحتاج مساعدة",
    "Back\\slash and /slash and {braces}",
    "",
)


def parse_rfc3339(value: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp produced by `rfc3339`."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def message_key(message: dict) -> tuple[str, str]:
    """The order the API pages in: by creation time, ties broken by id."""
    return (message["created_at"], message["id"])


@dataclass
class Conversation:
    """A conversation and its messages, kept oldest first by `message_key`."""

    record: dict
    messages: list[dict] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.record["id"]

    def add(self, message: dict) -> None:
        bisect.insort(self.messages, message, key=message_key)


class Dataset:
    """A deterministic Vobiz account: conversations, messages and a virtual clock."""

    def __init__(
        self,
        conversations: int = 50,
        messages: int = 1000,
        *,
        days: float = 30,
        seed: int = 1,
        now: dt.datetime = DEFAULT_NOW,
        channels: int = 3,
        contacts: int | None = None,
        templates_per_channel: int = 8,
        canned_responses: int = 12,
        contacts_max_limit: int = 100,
        campaigns: int = 7,
        recipients: int = 300,
        call_logs: int = 60,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.conversations: list[Conversation] = []
        self.by_id: dict[str, Conversation] = {}
        self.channels = [self._uuid() for _ in range(channels)]
        self.contacts = [self._uuid() for _ in range(max(1, conversations // 2))]
        self._generate(conversations, messages, dt.timedelta(days=days))
        # Every channel and contact the conversations name is in the account's lists.
        self.account = AccountData(
            seed=seed,
            now=lambda: self.now,
            channel_ids=self.channels,
            contact_ids=self.contacts,
            contacts=len(self.contacts) if contacts is None else contacts,
            templates_per_channel=templates_per_channel,
            canned_responses=canned_responses,
            days=days,
            contacts_max_limit=contacts_max_limit,
        )
        self.campaign_data = CampaignData(
            seed=seed,
            now=lambda: self.now,
            account=self.account,
            campaigns=campaigns,
            recipients=recipients,
            call_logs=call_logs,
            days=days,
        )

    # Generation

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _generate(self, count: int, messages: int, span: dt.timedelta) -> None:
        starts = sorted(self.now - span * self.rng.random() for _ in range(count))
        for start in starts:
            self._new_conversation(start.replace(microsecond=0))
        # Skewed sizes: most conversations are short, a few run to many pages.
        weights = [min(self.rng.paretovariate(1.2), 60.0) for _ in range(count)]
        total_weight = sum(weights) or 1.0
        sizes = [int(messages * w / total_weight) for w in weights]
        for index in range(messages - sum(sizes)):
            sizes[index % max(count, 1)] += 1
        for conversation, size in zip(self.conversations, sizes, strict=True):
            started = parse_rfc3339(conversation.record["started_at"])
            end = min(parse_rfc3339(conversation.record["expires_at"]), self.now)
            self._add_messages(conversation, size, started, end)

    def _new_conversation(self, started: dt.datetime) -> Conversation:
        expires = started + WINDOW
        conversation = Conversation(
            record={
                "id": self._uuid(),
                "account_id": ACCOUNT_ID,
                "channel_id": self.rng.choice(self.channels),
                "contact_id": self.rng.choice(self.contacts),
                "category": self.rng.choice(CATEGORIES),
                "is_billable": self.rng.random() < 0.7,
                "started_at": rfc3339(started),
                "expires_at": rfc3339(expires),
                "status": "open" if expires > self.now else "closed",
            }
        )
        self.conversations.append(conversation)
        self.by_id[conversation.id] = conversation
        return conversation

    def _add_messages(
        self,
        conversation: Conversation,
        count: int,
        start: dt.datetime,
        end: dt.datetime,
    ) -> None:
        seconds = max(int((end - start).total_seconds()), 0)
        previous: dt.datetime | None = None
        for offset in sorted(self.rng.randint(0, seconds) for _ in range(count)):
            created = start + dt.timedelta(seconds=offset)
            # Bursts: about one message in ten shares its predecessor's second.
            if previous is not None and self.rng.random() < 0.1:
                created = previous
            previous = created
            conversation.add(self._new_message(conversation, created))

    def _new_message(self, conversation: Conversation, created: dt.datetime) -> dict:
        rng = self.rng
        direction = "outbound" if rng.random() < 0.55 else "inbound"
        message_type = rng.choices([name for name, _ in MESSAGE_TYPES], [w for _, w in MESSAGE_TYPES])[0]
        age = self.now - created
        if direction == "inbound":
            status = "read" if age > dt.timedelta(minutes=30) else "delivered"
        elif age > dt.timedelta(days=1):
            status = rng.choices(["read", "delivered", "sent", "failed"], [70, 20, 5, 5])[0]
        else:
            status = rng.choice(["pending", "sent", "delivered", "read"])
        message = {
            "id": self._uuid(),
            "account_id": ACCOUNT_ID,
            "channel_id": conversation.record["channel_id"],
            "contact_id": conversation.record["contact_id"],
            "conversation_id": conversation.id,
            "direction": direction,
            "type": message_type,
            "status": status,
            "content": self._content(message_type),
            "meta_message_id": "wamid." + uuid.UUID(int=rng.getrandbits(128)).hex.upper(),
            "created_at": rfc3339(created),
        }
        # The documented gaps: no conversation yet, no Meta id yet.
        if rng.random() < 0.03:
            del message["conversation_id"]
        roll = rng.random()
        if status in {"pending", "failed"} and roll < 0.5:
            message["meta_message_id"] = None
        elif roll < 0.05:
            del message["meta_message_id"]
        return message

    def _content(self, message_type: str) -> str:
        rng = self.rng
        if rng.random() < 0.005:
            # Content that is not valid JSON: the API passes some through as-is.
            return rng.choice(['{"body": "truncated', "plain text, not json", "", "{'body': 1}"])
        payload: dict[str, object]
        if message_type == "text":
            payload = {"body": rng.choice(TEXT_BODIES)}
            if rng.random() < 0.1:
                payload["preview_url"] = True
        elif message_type in {"image", "video", "audio", "sticker", "document"}:
            media: dict[str, object] = (
                {"id": str(rng.getrandbits(52))}
                if rng.random() < 0.6
                else {"link": f"https://cdn.example.com/m/{rng.getrandbits(40):x}"}
            )
            mime = {
                "image": "image/jpeg",
                "video": "video/mp4",
                "audio": "audio/ogg",
                "sticker": "image/webp",
                "document": "application/pdf",
            }[message_type]
            media["mime_type"] = mime
            if message_type in {"image", "video", "document"} and rng.random() < 0.5:
                media["caption"] = rng.choice(TEXT_BODIES)
            if message_type == "document":
                media["filename"] = rng.choice(["invoice.pdf", "Rechnung März.pdf", "terms.pdf"])
            payload = media
        elif message_type == "template":
            payload = {
                "name": rng.choice(["order_update", "appointment_reminder", "otp_code"]),
                "language": rng.choice(["en_US", "de", "pt_BR"]),
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": rng.choice(TEXT_BODIES)},
                            {"type": "currency", "currency": {"code": "EUR", "amount_1000": 12990}},
                        ],
                    }
                ],
            }
        elif message_type == "location":
            payload = {
                "latitude": round(rng.uniform(-60, 60), 6),
                "longitude": round(rng.uniform(-180, 180), 6),
                "name": "Warehouse 3",
                "address": "Kaiserstraße 1, Frankfurt",
            }
        elif message_type == "contacts":
            payload = {
                "contacts": [
                    {
                        "name": {"formatted_name": "Ana Souza", "first_name": "Ana"},
                        "phones": [{"phone": "+55 11 91234-5678", "type": "CELL"}],
                    }
                ]
            }
        elif message_type == "interactive":
            payload = (
                {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes ✅"}}
                if rng.random() < 0.5
                else {"type": "list_reply", "list_reply": {"id": "r2", "title": "Reschedule"}}
            )
        else:  # button
            payload = {"payload": "CONFIRM_ORDER", "text": "Confirm"}
        # Vary the encoding so that only byte-exact passthrough reproduces it.
        if rng.random() < 0.5:
            return json.dumps(payload, ensure_ascii=False)
        return json.dumps(payload, separators=(",", ":"))

    # Evolution between runs

    def add_activity(
        self,
        *,
        hours: float = 6,
        new_conversations: int = 0,
        new_messages: int = 0,
        status_changes: int = 0,
        new_campaigns: int = 0,
        receipts: int = 0,
        new_calls: int = 0,
        receipt_days: float | None = None,
    ) -> dict:
        """Move the clock forward and add the activity of that period.

        New messages go to conversations whose window is open in the period (new ones
        included); status changes advance recent outbound messages one step (or to
        `failed`); conversations whose window has expired become `closed`. Campaigns
        move on (`CampaignData.advance`): scheduled ones start, `receipts` recipients
        move a status forward, new campaigns and calls appear.
        Returns what changed, with the ids involved.
        """
        before = self.now
        self.now = before + dt.timedelta(hours=hours)
        span = (self.now - before).total_seconds()
        created = [
            self._new_conversation(
                (before + dt.timedelta(seconds=self.rng.uniform(0, span))).replace(microsecond=0)
            )
            for _ in range(new_conversations)
        ]
        active = [c for c in self.conversations if parse_rfc3339(c.record["expires_at"]) > before]
        new_ids = []
        if active:
            for _ in range(new_messages):
                conversation = self.rng.choice(active)
                low = max(before, parse_rfc3339(conversation.record["started_at"]))
                high = min(self.now, parse_rfc3339(conversation.record["expires_at"]))
                moment = low + dt.timedelta(
                    seconds=self.rng.randint(1, max(int((high - low).total_seconds()), 1))
                )
                message = self._new_message(conversation, min(moment, high))
                conversation.add(message)
                new_ids.append(message["id"])
        changed = self._change_statuses(status_changes, since=before - dt.timedelta(days=2))
        closed = []
        for conversation in self.conversations:
            record = conversation.record
            if record["status"] == "open" and parse_rfc3339(record["expires_at"]) <= self.now:
                record["status"] = "closed"
                closed.append(conversation.id)
        moved_on = self.campaign_data.advance(
            before,
            new_campaigns=new_campaigns,
            receipts=receipts,
            new_calls=new_calls,
            receipt_days=receipt_days,
        )
        # Time goes on past the activity: the next request is at least a second after its last change.
        self.now += dt.timedelta(seconds=1)
        return {
            **moved_on,
            "now": rfc3339(self.now),
            "new_conversations": [c.id for c in created],
            "new_messages": new_ids,
            "status_changes": changed,
            "closed_conversations": closed,
        }

    def _change_statuses(self, count: int, *, since: dt.datetime) -> list[str]:
        since_text = rfc3339(since)
        candidates = [
            message
            for conversation in self.conversations
            if conversation.record["expires_at"] >= since_text
            for message in conversation.messages
            if message["direction"] == "outbound"
            and message["status"] in {"pending", "sent", "delivered"}
            and message["created_at"] >= since_text
        ]
        changed = []
        for message in self.rng.sample(candidates, min(count, len(candidates))):
            if message["status"] != "delivered" and self.rng.random() < 0.1:
                message["status"] = "failed"
            else:
                message["status"] = STATUS_ORDER[STATUS_ORDER.index(message["status"]) + 1]
            if message.get("meta_message_id") is None and message["status"] != "failed":
                message["meta_message_id"] = "wamid." + uuid.UUID(int=self.rng.getrandbits(128)).hex.upper()
            changed.append(message["id"])
        return changed

    def set_status(self, message_ids: list[str], status: str) -> list[dict]:
        """Outbound messages moved to `status` now, whatever their age: a receipt that comes days
        after the message was sent, past any rerun's lookback. Returns the messages changed."""
        if status not in {"sent", "delivered", "read", "failed"}:
            raise ValueError("status must be sent, delivered, read or failed")
        wanted = set(message_ids)
        found = [
            message
            for conversation in self.conversations
            for message in conversation.messages
            if message["id"] in wanted
        ]
        if len(found) != len(wanted) or any(m["direction"] != "outbound" for m in found):
            raise ValueError("ids must name outbound messages")
        for message in found:
            message["status"] = status
        return found

    # Views

    def message_count(self) -> int:
        return sum(len(c.messages) for c in self.conversations)

    def export(self) -> dict:
        """Everything served, as the API serves it, with each message's conversation."""
        return {
            "now": rfc3339(self.now),
            "conversations": [c.record for c in self.conversations],
            "messages": {c.id: c.messages for c in self.conversations},
            **self.account.export(),
            **self.campaign_data.export(),
            # The campaign each recipient row is listed under (some rows omit `campaign_id`).
            "recipient_campaigns": {
                row["id"]: campaign_id
                for campaign_id, rows in self.campaign_data.recipients.items()
                for row in rows
            },
        }

    def change(self, collection: str, spec: dict) -> dict[str, list[str]]:
        """Create, update or delete rows of one of the page-numbered lists (`spec`: create, update,
        delete, delete_ids, update_ids, fraction_ms), stamped with the clock."""
        create, update, delete = (int(spec.get(k, 0)) for k in ("create", "update", "delete"))
        delete_ids = list(spec.get("delete_ids", []))
        if collection not in {"campaigns", "call_logs"}:
            fraction = spec.get("fraction_ms")
            return self.account.change(
                collection,
                create=create,
                update=update,
                delete=delete,
                delete_ids=delete_ids,
                update_ids=list(spec.get("update_ids", [])),
                fraction_ms=int(fraction) if fraction is not None else None,
            )
        if update:
            raise ValueError(f"{collection} change by `add_activity` (receipts, calls), not `update`")
        data = self.campaign_data
        add = data.add_campaigns if collection == "campaigns" else data.add_calls
        created = add(create, since=self.now)
        live = data.campaigns if collection == "campaigns" else data.call_logs
        doomed = set(delete_ids) | {row["id"] for row in data.rng.sample(live.rows, min(delete, len(live)))}
        if collection == "campaigns":
            deleted = data.delete_campaigns(doomed)
        else:
            deleted = [row["id"] for row in live.remove(doomed)]
        return {"created": created, "updated": [], "deleted": deleted}
