"""Broadcast campaigns, their recipients, and WhatsApp call logs, and how they move on.

Campaigns come in every lifecycle status; each campaign's counters are computed from its
recipients (sent = sent, delivered or read; delivered = delivered or read; read; failed;
skipped), so they always agree. Recipients carry Meta's error codes when they fail and
null `sent_at`/`delivered_at`/`read_at` until those happen. `advance` moves time on:
scheduled campaigns start, queued recipients are sent, delivery and read receipts arrive
(for completed campaigns too, for days), campaigns complete, and new campaigns and calls
appear. Every change moves the row's `updated_at`, and a recipient's change moves its
campaign's counters and `updated_at`.
"""

from __future__ import annotations

import datetime as dt
import random
import typing as t
import uuid

from vobiz_emulator.account_data import ACCOUNT_ID, rfc3339
from vobiz_emulator.page_lists import LiveList

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from vobiz_emulator.account_data import AccountData

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "completed", "cancelled", "failed")
FINISHED = frozenset({"completed", "cancelled", "failed"})
# A recipient's status moves forward along this order (or to failed/skipped).
RECIPIENT_ORDER = ("queued", "sent", "delivered", "read")
META_ERRORS = (
    ("131026", "Message undeliverable: the number is not on WhatsApp"),
    ("131042", "Business eligibility payment issue"),
    ("131047", "Re-engagement message: more than 24 hours since the customer last replied"),
    ("131049", "Meta chose not to deliver this message to keep the ecosystem healthy"),
    ("130472", "User's number is part of an experiment"),
)
CALL_STATUSES = (
    "initiated",
    "ringing",
    "pre_accepted",
    "accepted",
    "rejected",
    "terminated",
    "failed",
    "missed",
)
HANGUP_CAUSES = ("normal_clearing", "user_busy", "no_answer", "call_rejected", "network_error")


def counters(recipients: t.Iterable[dict]) -> dict[str, int]:
    """A campaign's outcome counters from its recipients' statuses (cumulative funnel)."""
    counts = dict.fromkeys(
        ("sent_count", "delivered_count", "read_count", "failed_count", "skipped_count"), 0
    )
    for recipient in recipients:
        status = recipient["status"]
        if status in {"sent", "delivered", "read"}:
            counts["sent_count"] += 1
        if status in {"delivered", "read"}:
            counts["delivered_count"] += 1
        if status == "read":
            counts["read_count"] += 1
        elif status in {"failed", "skipped"}:
            counts[f"{status}_count"] += 1
    return counts


class CampaignData:
    """Campaigns, each campaign's recipients, and call logs, as live page-numbered lists."""

    def __init__(
        self,
        *,
        seed: int,
        now: Callable[[], dt.datetime],
        account: AccountData,
        campaigns: int,
        recipients: int,
        call_logs: int,
        days: float,
    ) -> None:
        self.rng = random.Random(f"{seed}:campaigns")
        self.now = now
        self.account = account
        self.span = dt.timedelta(days=max(days, 1))
        self.campaigns = LiveList(default_limit=20, max_limit=100)
        self.recipients: dict[str, LiveList] = {}
        sizes = self._sizes(campaigns, recipients)
        for number, size in enumerate(sizes):
            # The first seven in every status; then as in a real account, mostly completed.
            status = (
                CAMPAIGN_STATUSES[number]
                if number < len(CAMPAIGN_STATUSES)
                else self.rng.choices(CAMPAIGN_STATUSES, (3, 3, 4, 2, 80, 4, 4))[0]
            )
            self._new_campaign(status, size)
        self.call_logs = LiveList((self._call() for _ in range(call_logs)), default_limit=25, max_limit=50)

    # Generation

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _sizes(self, campaigns: int, recipients: int) -> list[int]:
        """Recipients per campaign: skewed, a few large; they add up to `recipients`."""
        weights = [self.rng.paretovariate(1.5) for _ in range(campaigns)]
        total = sum(weights) or 1.0
        sizes = [int(recipients * w / total) for w in weights]
        for index in range(recipients - sum(sizes)):
            sizes[index % max(campaigns, 1)] += 1
        return sizes

    def _ago(self, low: float = 0.0, high: float = 1.0) -> dt.datetime:
        """A moment between `high` and `low` spans ago, at least a second before the clock."""
        fraction = low + (high - low) * self.rng.random()
        return self.now() - self.span * fraction - dt.timedelta(seconds=1)

    def _new_campaign(self, status: str, size: int, *, created: dt.datetime | None = None) -> dict:
        rng = self.rng
        channel = rng.choice(list(self.account.channels))
        templates = list(self.account.templates.get(channel["id"], ())) or [{}]
        template = rng.choice(templates)
        created = created or self._ago(0.1, 1.0)
        campaign: dict[str, t.Any] = {
            "id": self._uuid(),
            "channel_id": channel["id"],
            "name": f"{rng.choice(('Spring', 'Black Friday', 'Renewal', 'Welcome', 'Win-back'))} "
            f"{rng.randrange(2024, 2027)} #{rng.randrange(1, 500)}",
            "template_id": template.get("id"),
            "template_name": template.get("name"),
            "template_lang": template.get("language"),
            "status": status,
            "total_recipients": size,
            "batch_size": rng.choice((50, 100, 250, 1000)),
            "batch_delay_ms": rng.choice((0, 500, 1000, 5000)),
            "created_at": rfc3339(created),
        }
        if status == "paused":
            campaign["pause_reason"] = rng.choice(
                ("quality rating dropped", "paused by user", "template paused")
            )
        if status != "draft":
            scheduled = created + dt.timedelta(hours=rng.uniform(1, 48))
            if status == "scheduled":
                scheduled = max(scheduled, self.now() + dt.timedelta(hours=rng.uniform(1, 48)))
            campaign["scheduled_at"] = rfc3339(scheduled)
            if status != "scheduled":
                campaign["started_at"] = rfc3339(min(scheduled, self.now() - dt.timedelta(minutes=5)))
        recipients = LiveList(default_limit=50, max_limit=100)
        started = dt.datetime.fromisoformat(
            campaign.get("started_at", campaign["created_at"]).replace("Z", "+00:00")
        )
        contacts = self.account.contacts.rows
        for _ in range(size):
            contact = rng.choice(contacts)
            recipients.rows.append(self._recipient(campaign, contact, started))
        recipients.rows.sort(key=lambda row: (row["created_at"], row["id"]))
        if status in FINISHED:
            last = max((r["updated_at"] for r in recipients.rows), default=campaign["started_at"])
            campaign["completed_at"] = max(last, campaign["started_at"])
        self.recipients[campaign["id"]] = recipients
        self._recount(campaign, touched=False)
        self.campaigns.add(campaign)
        return campaign

    def _recipient(self, campaign: dict, contact: dict, started: dt.datetime) -> dict:
        rng = self.rng
        target = self._first_status(campaign["status"])
        created = campaign["created_at"]
        recipient: dict[str, t.Any] = {
            "id": self._uuid(),
            "campaign_id": campaign["id"],
            "contact_id": contact["id"],
            "phone_number": contact["phone_number"],
            "variables": {"1": contact["name"].split()[0], "2": f"#{rng.randrange(1000, 9999)}"},
            "status": "queued",
            "meta_message_id": None,
            "error_code": None,
            "error_desc": None,
            "sent_at": None,
            "delivered_at": None,
            "read_at": None,
            "created_at": created,
            "updated_at": created,
        }
        latest = self.now() - dt.timedelta(seconds=1)
        moment = min(started + dt.timedelta(seconds=rng.uniform(1, 3600)), latest)
        if target in {"failed", "skipped"}:
            self._finish_badly(recipient, target, moment)
        while recipient["status"] != target:
            self._step(recipient, moment)
            moment = min(moment + dt.timedelta(seconds=rng.uniform(1, 7200)), latest)
        if rng.random() < 0.03:  # the API omits it now and then, as it omits messages' conversation_id
            del recipient["campaign_id"]
        return recipient

    def _first_status(self, campaign_status: str) -> str:
        rng = self.rng
        if campaign_status in {"draft", "scheduled"}:
            return "queued"
        if campaign_status == "failed":
            return rng.choice(("failed", "failed", "sent", "queued"))
        if campaign_status == "cancelled":
            return rng.choice(("queued", "sent", "delivered", "read", "skipped"))
        weights = (
            (10, 10, 25, 40, 10, 5) if campaign_status in {"sending", "paused"} else (0, 10, 30, 45, 10, 5)
        )
        return rng.choices(("queued", "sent", "delivered", "read", "failed", "skipped"), weights)[0]

    def _step(self, recipient: dict, moment: dt.datetime) -> None:
        """Move a recipient one status forward, at `moment`."""
        at = rfc3339(moment)
        status = RECIPIENT_ORDER[RECIPIENT_ORDER.index(recipient["status"]) + 1]
        recipient["status"] = status
        recipient[f"{status}_at"] = at
        if status == "sent":
            recipient["meta_message_id"] = "wamid." + uuid.UUID(int=self.rng.getrandbits(128)).hex.upper()
        recipient["updated_at"] = at

    def _finish_badly(self, recipient: dict, status: str, moment: dt.datetime) -> None:
        if status == "failed":
            recipient["error_code"], recipient["error_desc"] = self.rng.choice(META_ERRORS)
        else:
            recipient["error_desc"] = "contact opted out"
        recipient["status"] = status
        recipient["updated_at"] = rfc3339(moment)

    def _recount(self, campaign: dict, *, touched: bool = True) -> None:
        recipients = self.recipients[campaign["id"]]
        campaign.update(counters(recipients))
        campaign["total_recipients"] = len(recipients)
        if touched:
            campaign["updated_at"] = rfc3339(self.now())
        else:
            times = [campaign["created_at"], *(campaign.get(k) or "" for k in ("started_at", "completed_at"))]
            times += [r["updated_at"] for r in recipients]
            campaign["updated_at"] = max(times)

    def _call(self, started: dt.datetime | None = None) -> dict:
        rng = self.rng
        channel = rng.choice(list(self.account.channels))
        contact = rng.choice(self.account.contacts.rows)
        direction = rng.choice(("inbound", "outbound"))
        started = started or self._ago(0.0, 1.0)
        status = rng.choices(CALL_STATUSES, (1, 1, 1, 2, 6, 60, 4, 25))[0]
        call: dict[str, t.Any] = {
            "id": self._uuid(),
            "account_id": ACCOUNT_ID,
            "channel_id": channel["id"],
            "meta_call_id": "wacid." + uuid.UUID(int=rng.getrandbits(128)).hex.upper(),
            "direction": direction,
            "from_number": contact["phone_number"] if direction == "inbound" else channel["phone_number"],
            "to_number": channel["phone_number"] if direction == "inbound" else contact["phone_number"],
            "status": status,
            "call_type": "voice",
            "offer_sdp": _sdp(rng, "offer"),
            "answer_sdp": _sdp(rng, "answer") if status in {"accepted", "terminated", "pre_accepted"} else None,  # noqa: E501
            "ice_candidates": {
                "candidates": [
                    {"candidate": f"candidate:{n} 1 udp {2122260223 - n} 192.0.2.{rng.randrange(1, 254)} "
                     f"{rng.randrange(1024, 65535)} typ host", "sdpMid": "0", "sdpMLineIndex": 0}
                    for n in range(rng.randrange(1, 4))
                ]
            },
            "started_at": rfc3339(started),
            "answered_at": None,
            "ended_at": None,
            "duration_seconds": 0,
            "hangup_cause": None,
            "metadata": {"codec": "opus", "region": rng.choice(("eu-west", "us-east", "ap-south"))},
            "created_at": rfc3339(started),
        }  # fmt: skip
        self._settle_call(call, started)
        return call

    def _settle_call(self, call: dict, started: dt.datetime) -> None:
        """Answer and end a call as its status says; `updated_at` is its last event."""
        rng, status = self.rng, call["status"]
        last = started
        if status in {"accepted", "terminated"}:
            answered = started + dt.timedelta(seconds=rng.uniform(2, 25))
            call["answered_at"] = rfc3339(answered)
            last = answered
            if status == "terminated":
                duration = rng.randrange(5, 1800)
                last = answered + dt.timedelta(seconds=duration)
                call["duration_seconds"] = duration
                call["ended_at"] = rfc3339(last)
                call["hangup_cause"] = "normal_clearing"
        elif status in {"rejected", "failed", "missed"}:
            last = started + dt.timedelta(seconds=rng.uniform(5, 40))
            call["ended_at"] = rfc3339(last)
            call["hangup_cause"] = rng.choice(HANGUP_CAUSES[1:])
        call["updated_at"] = rfc3339(min(last, self.now() - dt.timedelta(seconds=1)))

    # Moving on

    def advance(
        self,
        before: dt.datetime,
        *,
        new_campaigns: int = 0,
        receipts: int = 0,
        new_calls: int = 0,
        receipt_days: float | None = None,
    ) -> dict:
        """What happens between `before` and the clock: campaigns start, send, complete; receipts; calls.

        `receipt_days`: receipts only for campaigns that started within that many days (WhatsApp
        stops trying to deliver after 30); None: any campaign's recipients may move.
        """
        now = self.now()
        started, completed = [], []
        for campaign in self.campaigns:
            if campaign["status"] == "scheduled" and campaign["scheduled_at"] <= rfc3339(now):
                campaign["status"], campaign["started_at"] = "sending", campaign["scheduled_at"]
                started.append(campaign["id"])
        recent = rfc3339(now - dt.timedelta(days=receipt_days)) if receipt_days is not None else ""
        active = [
            c
            for c in self.campaigns
            if c["status"] in {"sending", "completed"} and (c.get("started_at") or c["created_at"]) >= recent
        ]
        movable = [
            (campaign, recipient)
            for campaign in active
            for recipient in self.recipients[campaign["id"]]
            if recipient["status"] in {"queued", "sent", "delivered"}
            and (recipient["status"] != "queued" or campaign["status"] == "sending")
        ]
        changed_recipients, touched = [], {}
        for campaign, recipient in self.rng.sample(movable, min(receipts, len(movable))):
            moment = self._since(before)
            if recipient["status"] == "queued" and self.rng.random() < 0.05:
                self._finish_badly(recipient, "failed", moment)
            else:
                self._step(recipient, moment)
            changed_recipients.append(recipient["id"])
            touched[campaign["id"]] = campaign
        for campaign in touched.values():
            if campaign["status"] == "sending" and not any(
                r["status"] == "queued" for r in self.recipients[campaign["id"]]
            ):
                campaign["status"], campaign["completed_at"] = "completed", rfc3339(now)
                completed.append(campaign["id"])
            self._recount(campaign)
        return {
            "campaigns_started": started,
            "campaigns_completed": completed,
            "new_campaigns": self.add_campaigns(new_campaigns, since=before),
            "recipient_changes": changed_recipients,
            "new_calls": self.add_calls(new_calls, since=before),
        }

    def _since(self, since: dt.datetime) -> dt.datetime:
        span = max((self.now() - since).total_seconds(), 0.0)
        return since + dt.timedelta(seconds=self.rng.uniform(0, span))

    def add_campaigns(self, count: int, *, since: dt.datetime) -> list[str]:
        """New campaigns (draft, scheduled or sending, 25 recipients), created since `since`."""
        created = []
        for _ in range(count):
            status = self.rng.choice(("draft", "scheduled", "sending"))
            campaign = self._new_campaign(status, 25, created=self._since(since))
            self._recount(campaign)
            created.append(campaign["id"])
        return created

    def add_calls(self, count: int, *, since: dt.datetime) -> list[str]:
        """New calls, started since `since`."""
        calls = []
        for _ in range(count):
            call = self._call(self._since(since))
            self.call_logs.add(call)
            calls.append(call["id"])
        return calls

    def delete_campaigns(self, ids: t.Collection[str]) -> list[str]:
        for campaign_id in ids:
            self.recipients.pop(campaign_id, None)
        return [row["id"] for row in self.campaigns.remove(ids)]

    def export(self) -> dict[str, list[dict]]:
        return {
            "campaigns": list(self.campaigns),
            "campaign_recipients": [row for live in self.recipients.values() for row in live],
            "call_logs": list(self.call_logs),
        }


def _sdp(rng: random.Random, kind: str) -> str:
    """A WebRTC session description: large, and it holds network addresses (documentation ranges)."""
    address = f"192.0.2.{rng.randrange(1, 254)}"
    lines = [
        "v=0",
        f"o=- {rng.getrandbits(62)} 2 IN IP4 {address}",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        f"m=audio {rng.randrange(1024, 65535)} UDP/TLS/RTP/SAVPF 111",
        f"c=IN IP4 {address}",
        f"a=candidate:1 1 udp 2122260223 {address} {rng.randrange(1024, 65535)} typ host",
        "a=candidate:2 1 udp 2122262783 2001:db8::1 50000 typ host",
        f"a=ice-ufrag:{rng.getrandbits(32):08x}",
        f"a=fingerprint:sha-256 {':'.join(f'{rng.randrange(256):02X}' for _ in range(32))}",
        f"a=setup:{'actpass' if kind == 'offer' else 'active'}",
        "a=rtpmap:111 opus/48000/2",
    ]
    return "\r\n".join(lines) + "\r\n"
