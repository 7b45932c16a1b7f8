"""The account's dimensions: channels, their templates, contacts and canned responses.

Generated from the dataset's seed (with a random stream of their own, so the
conversations and messages of a seed stay what they were), and changed by `change`:
rows created, updated and deleted between runs or while a run pages.
"""

from __future__ import annotations

import datetime as dt
import random
import typing as t
import uuid

from vobiz_emulator.page_lists import LiveList

if t.TYPE_CHECKING:
    from collections.abc import Callable

ACCOUNT_ID = "MA_EMULATOR"

# The collections `change` creates, updates and deletes rows of.
COLLECTIONS = ("channels", "templates", "contacts", "canned_responses", "campaigns", "call_logs")
ONBOARDING_MODES = ("buy_from_vobiz", "bring_your_own", "embedded_signup")
VERIFICATION = ("verified", "verified", "verified", "pending", "rejected")
CHANNEL_STATUSES = ("active", "active", "active", "inactive", "suspended")
TEMPLATE_CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
TEMPLATE_STATUSES = ("APPROVED", "APPROVED", "APPROVED", "PENDING_REVIEW", "REJECTED", "DISABLED", "PAUSED")
QUALITY = ("GREEN", "GREEN", "YELLOW", "RED", "UNKNOWN")
LANGUAGES = ("en_US", "de", "pt_BR", "es", "hi")
TEMPLATE_NAMES = (
    "order_update",
    "appointment_reminder",
    "otp_code",
    "shipping_delay",
    "welcome_offer",
    "payment_due",
    "feedback_request",
    "back_in_stock",
)
TAGS = ("vip", "newsletter", "churn-risk", "b2b", "trial", "lead", "do-not-contact", "beta")
FIRST_NAMES = (
    "Ana",
    "Bob",
    "Chen",
    "Dara",
    "Émile",
    "Farah",
    "Gita",
    "Hiro",
    "Ines",
    "Jonas",
    "Keiko",
    "Lena",
)
LAST_NAMES = ("Souza", "Müller", "Wang", "O'Brien", "Kumar", "Nakamura", "García", "Okafor", "Novak")
CANNED = (
    ("/greeting", "Hi! Thanks for contacting us. How can we help?"),
    ("/hours", "We're open Monday to Friday, 9:00–18:00 CET."),  # noqa: RUF001
    ("/refund", "Your refund has been issued and should arrive within 5–7 business days."),  # noqa: RUF001
    ("/handoff", "I'm passing you to a colleague who can help with this."),
    ("/thanks", "Thank you! Is there anything else we can do for you? 😊"),
    ("/tracking", 'You can track your order here: https://example.com/track?id={{1}} — "live" updates'),
)


def rfc3339(moment: dt.datetime) -> str:
    """Format a UTC datetime the way the API does (second precision, `Z`)."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AccountData:
    """Channels, templates per channel, contacts and canned responses, as live page-numbered lists."""

    def __init__(
        self,
        *,
        seed: int,
        now: Callable[[], dt.datetime],
        channel_ids: list[str],
        contact_ids: list[str],
        contacts: int,
        templates_per_channel: int = 8,
        canned_responses: int = 12,
        days: float = 30,
        contacts_max_limit: int = 100,
    ) -> None:
        self.rng = random.Random(f"{seed}:account")
        self.now = now
        self.span = dt.timedelta(days=max(days, 1))
        self.channels = LiveList((self._channel(i) for i in channel_ids), default_limit=100)
        self.channels.rows[0]["business_profile"] = ""  # the documented "may be empty", in every account
        self.templates: dict[str, LiveList] = {
            channel["id"]: self._template_list(channel, templates_per_channel) for channel in self.channels
        }
        extra = max(contacts - len(contact_ids), 0)
        self.contacts = LiveList(
            (self._contact(i) for i in [*contact_ids, *(self._uuid() for _ in range(extra))]),
            default_limit=25,
            max_limit=contacts_max_limit,
        )
        self.canned_responses = LiveList(
            (self._canned(n) for n in range(canned_responses)), default_limit=20, fixed_limit=20
        )

    # Generation

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _digits(self, count: int) -> str:
        return str(self.rng.randrange(10 ** (count - 1), 10**count))

    def _times(self) -> tuple[str, str]:
        """`created_at` and `updated_at` in the past, at least a second before the clock."""
        now = self.now()
        created = now - self.span * self.rng.random() - dt.timedelta(seconds=1)
        updated = created + (now - dt.timedelta(seconds=1) - created) * self.rng.random() ** 3
        return rfc3339(created), rfc3339(updated)

    def _channel(self, channel_id: str) -> dict:
        rng = self.rng
        created, updated = self._times()
        mode = rng.choice(ONBOARDING_MODES)
        return {
            "id": channel_id,
            "account_id": ACCOUNT_ID,
            "waba_id": self._digits(15),
            "phone_number_id": self._digits(15),
            "phone_number": "+49" + self._digits(10),
            "number_onboarding_mode": mode,
            "number_provider": "meta_direct" if mode != "buy_from_vobiz" else "vobiz",
            "number_order_id": self._uuid() if mode == "buy_from_vobiz" else None,
            "verification_status": rng.choice(VERIFICATION),
            "display_name": rng.choice(("Acme Support", "Acme Sales", "Ácme Lojas", "ACME 🚚 Delivery")),
            "business_profile": rng.choice(("", "We deliver everything, everywhere.", "Support: 9–18 CET")),  # noqa: RUF001
            "status": rng.choice(CHANNEL_STATUSES),
            "created_at": created,
            "updated_at": updated,
        }

    def _template_list(self, channel: dict, count: int) -> LiveList:
        return LiveList((self._template(channel) for _ in range(count)), default_limit=20, fixed_limit=20)

    def _template(self, channel: dict) -> dict:
        rng = self.rng
        created, updated = self._times()
        components: list[dict] = [{"type": "BODY", "text": "Hello {{1}}, your order {{2}} is on its way."}]
        if rng.random() < 0.5:
            components.insert(0, {"type": "HEADER", "format": "TEXT", "text": "Order update"})
        if rng.random() < 0.3:
            components.append({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]})
        return {
            "id": self._uuid(),
            "account_id": ACCOUNT_ID,
            "channel_id": channel["id"],
            "waba_id": channel["waba_id"],
            "meta_template_id": self._digits(16),
            "name": f"{rng.choice(TEMPLATE_NAMES)}_{rng.randrange(1, 99)}",
            "language": rng.choice(LANGUAGES),
            "category": rng.choice(TEMPLATE_CATEGORIES),
            "status": rng.choice(TEMPLATE_STATUSES),
            "components": {"components": components},
            "quality_score": rng.choice(QUALITY),
            "created_at": created,
            "updated_at": updated,
        }

    def _contact(self, contact_id: str) -> dict:
        rng = self.rng
        created, updated = self._times()
        contact = {
            "id": contact_id,
            "account_id": ACCOUNT_ID,
            "phone_number": "+" + rng.choice(("1", "44", "49", "55", "91")) + self._digits(10),
            "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "tags": rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))),
            "custom_attributes": {"plan": rng.choice(("free", "pro", "enterprise"))}
            if rng.random() < 0.6
            else {},
            "created_at": created,
            "updated_at": updated,
        }
        if rng.random() < 0.75:  # omitted for a contact that never had any activity
            contact["last_active_at"] = updated
        return contact

    def _canned(self, number: int) -> dict:
        created, _ = self._times()
        shortcut, content = CANNED[number % len(CANNED)]
        suffix = f"{number // len(CANNED) + 1}" if number >= len(CANNED) else ""
        return {"id": self._uuid(), "shortcut": shortcut + suffix, "content": content, "created_at": created}

    # Changes

    def lists(self, collection: str) -> list[LiveList]:
        if collection == "templates":
            return list(self.templates.values())
        return [getattr(self, collection)]

    def change(
        self,
        collection: str,
        *,
        create: int = 0,
        update: int = 0,
        delete: int = 0,
        delete_ids: t.Collection[str] = (),
        update_ids: t.Collection[str] = (),
        fraction_ms: int | None = None,
    ) -> dict[str, list[str]]:
        """Create, update and delete rows of a collection, stamped with the clock (with `fraction_ms`,
        milliseconds into its second: `…:00.700Z`, as a server whose clock is finer than its `Date`
        header's); the ids involved."""
        check_collection(collection)
        now = rfc3339(self.now())
        if fraction_ms is not None:
            now = f"{now[:-1]}.{fraction_ms:03d}Z"
        created, updated = [], []
        for _ in range(create):
            row = self._new_row(collection)
            row["created_at"] = now
            if "updated_at" in row:
                row["updated_at"] = now
            self._list_for(collection, row).add(row)
            created.append(row["id"])
        rows = [row for live in self.lists(collection) for row in live]
        if update and collection == "canned_responses":
            raise ValueError("canned responses cannot be updated (the API has no update endpoint)")
        chosen = [row for row in rows if row["id"] in set(update_ids)]
        for row in [*chosen, *self.rng.sample(rows, min(update, len(rows)))]:
            self._update(collection, row, now)
            updated.append(row["id"])
        doomed = set(delete_ids) | {row["id"] for row in self.rng.sample(rows, min(delete, len(rows)))}
        deleted = [row["id"] for live in self.lists(collection) for row in live.remove(doomed)]
        if collection == "channels":
            for channel_id in deleted:
                self.templates.pop(channel_id, None)
        return {"created": created, "updated": updated, "deleted": deleted}

    def _new_row(self, collection: str) -> dict:
        if collection == "channels":
            channel = self._channel(self._uuid())
            self.templates[channel["id"]] = self._template_list(channel, 2)
            return channel
        if collection == "templates":
            return self._template(self.rng.choice(list(self.channels)))
        if collection == "contacts":
            return self._contact(self._uuid())
        return self._canned(self.rng.randrange(100, 1000))

    def _list_for(self, collection: str, row: dict) -> LiveList:
        if collection == "templates":
            return self.templates[row["channel_id"]]
        return getattr(self, collection)

    def _update(self, collection: str, row: dict, now: str) -> None:
        rng = self.rng
        if collection == "contacts":
            row["tags"] = rng.sample(TAGS, rng.choice((1, 2)))
            row["name"] = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            row["last_active_at"] = now
        elif collection == "templates":
            row["status"] = rng.choice(TEMPLATE_STATUSES)
            row["quality_score"] = rng.choice(QUALITY)
        else:
            row["status"] = rng.choice(CHANNEL_STATUSES)
            row["display_name"] = rng.choice(("Acme Support", "Acme Help Desk"))
        row["updated_at"] = now

    def export(self) -> dict[str, list[dict]]:
        return {
            "channels": list(self.channels),
            "templates": [row for live in self.templates.values() for row in live],
            "contacts": list(self.contacts),
            "canned_responses": list(self.canned_responses),
        }


def check_collection(collection: str) -> None:
    if collection not in COLLECTIONS:
        raise ValueError(f"no collection {collection!r}: one of {', '.join(COLLECTIONS)}")
