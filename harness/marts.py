"""The warehouse models' figures computed in Python from what the emulator serves, and how the
marts dbt built differ from them: used by `make demo` and the tests, so both check the same thing.

Written from the marts' documented definitions (transform/models/marts/_vobiz__models.yml), not
from their SQL: each figure is worked out here row by row from the served records.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import statistics
import typing as t
from collections import Counter, defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

if t.TYPE_CHECKING:
    from harness.pipeline_stack import Postgres

MARTS_SCHEMA = "vobiz_analytics"
CATEGORIES = ("service", "marketing", "utility", "authentication")
STATUSES = ("pending", "sent", "delivered", "read", "failed")
# The columns compared, per mart, and its key.
KEYS = {
    "vobiz__campaign_performance": ("campaign_id",),
    "vobiz__conversation_metrics": ("conversation_id",),
    "vobiz__channel_daily": ("channel_id", "date_day"),
    "vobiz__channels": ("channel_id",),
    "vobiz__contacts": ("contact_id",),
    "vobiz__messages": ("message_id",),
    "vobiz__template_performance": ("channel_id", "template_name", "template_language", "date_day"),
    "vobiz__response_times": ("conversation_id",),
    "vobiz__channel_daily_spend": ("channel_id", "date_day"),
    "vobiz__campaign_spend": ("campaign_id",),
}
RATE_CARD = Path(__file__).resolve().parent.parent / "transform" / "seeds" / "vobiz_rate_card.csv"
# The `vobiz_business_hours` var's default (transform/dbt_project.yml).
BUSINESS_DAYS, OPENS, CLOSES, BUSINESS_ZONE = {1, 2, 3, 4, 5}, 9, 17, "UTC"


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _day(value: object) -> dt.date | None:
    moment = _time(value)
    return moment.astimezone(dt.timezone.utc).date() if moment else None


def _content(content: object) -> dict:
    try:
        value = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _language(value: object) -> str | None:
    """A template's language code: Meta's object form (`{"code": "en_US", ...}`) or the code itself."""
    if isinstance(value, dict):
        value = value.get("code")
    return None if value is None or isinstance(value, (dict, list)) else _text(value)


def _messages(served: dict) -> list[dict]:
    """Every served message, with the conversation it is listed under."""
    return [
        {**m, "conversation_id": m.get("conversation_id") or conversation_id}
        for conversation_id, items in served["messages"].items()
        for m in items
    ]


def campaign_performance(served: dict) -> dict[tuple, dict]:
    templates = {row["id"]: row for row in served["templates"]}
    by_campaign: dict[str, list[dict]] = defaultdict(list)
    for row in served["campaign_recipients"]:
        by_campaign[row.get("campaign_id") or served["recipient_campaigns"][row["id"]]].append(row)
    marts = {}
    for campaign in served["campaigns"]:
        rows = by_campaign[campaign["id"]]
        status = Counter(row.get("status") for row in rows)
        sent = status["sent"] + status["delivered"] + status["read"]
        delivered = status["delivered"] + status["read"]
        attempted = sent + status["failed"]
        documented = ("queued", "sent", "delivered", "read", "failed", "skipped")
        failures = Counter(
            r["error_code"] for r in rows if r.get("status") == "failed" and r.get("error_code")
        )
        top = min(failures, key=lambda code: (-failures[code], code)) if failures else None
        descs = [
            r.get("error_desc") for r in rows if r.get("status") == "failed" and r.get("error_code") == top
        ]
        reads = [
            (_time(r["read_at"]) - _time(r["sent_at"])).total_seconds()  # type: ignore[operator]
            for r in rows
            if r.get("status") == "read" and r.get("sent_at") and r.get("read_at")
        ]
        template = templates.get(campaign.get("template_id"))
        marts[(campaign["id"],)] = {
            "status": campaign.get("status"),
            "template_name": (template or {}).get("name") or campaign.get("template_name"),
            "recipients": len(rows),
            "queued": status["queued"],
            "sent": sent,
            "delivered": delivered,
            "read": status["read"],
            "failed": status["failed"],
            "skipped": status["skipped"],
            "other_status": sum(n for value, n in status.items() if value not in documented),
            "attempted": attempted,
            "delivery_rate": delivered / attempted if attempted else None,
            "read_rate": status["read"] / attempted if attempted else None,
            "failure_rate": status["failed"] / attempted if attempted else None,
            "top_error_code": top,
            "top_error_desc": max((d for d in descs if d is not None), default=None),
            "median_seconds_to_read": statistics.median(reads) if reads else None,
            "api_sent_count": campaign.get("sent_count"),
            "api_read_count": campaign.get("read_count"),
        }
    return marts


def _replies(items: list[dict]) -> list[tuple[dt.datetime, dt.datetime | None, dt.datetime]]:
    """A conversation's customer turns: (first customer message, its reply or None, last customer message).

    A failed send is no reply; a reply stamped in the same second as a customer message does not
    answer it (outbound first at a tie).
    """
    timed = [
        m for m in items
        if _time(m.get("created_at")) and m.get("direction") in {"inbound", "outbound"}
        and not (m.get("direction") == "outbound" and m.get("status") == "failed")
    ]  # fmt: skip
    timed.sort(key=lambda m: (_time(m["created_at"]), m["direction"] == "inbound", m["id"]))
    turns: list[tuple[dt.datetime, dt.datetime | None, dt.datetime]] = []
    first = last = None
    for m in timed:
        moment = _time(m["created_at"])
        if m["direction"] == "inbound":
            first, last = first or moment, moment
        elif first is not None:
            turns.append((first, moment, last))  # type: ignore[arg-type]
            first = last = None
    if first is not None:
        turns.append((first, None, last))  # type: ignore[arg-type]
    return turns


def conversation_metrics(served: dict) -> dict[tuple, dict]:
    marts = {}
    for conversation in served["conversations"]:
        items = served["messages"][conversation["id"]]
        inbound = [_time(m["created_at"]) for m in items if m.get("direction") == "inbound"]
        outbound = [m for m in items if m.get("direction") == "outbound"]
        first_in = min((m for m in inbound if m), default=None)
        turns = _replies(items)
        first_out = turns[0][1] if turns else None
        marts[(conversation["id"],)] = {
            "channel_id": conversation.get("channel_id"),
            "category": conversation.get("category"),
            "is_billable": conversation.get("is_billable"),
            "status": conversation.get("status"),
            "messages": len(items),
            "inbound_messages": len(inbound),
            "outbound_messages": len(outbound),
            "first_inbound_at": first_in,
            "first_response_at": first_out,
            "first_response_seconds": (first_out - first_in).total_seconds()
            if first_out and first_in
            else None,
            "failed_outbound_messages": sum(m.get("status") == "failed" for m in outbound),
            "read_outbound_messages": sum(m.get("status") == "read" for m in outbound),
        }
    return marts


def _channel_days(served: dict) -> dict[tuple, dict]:
    """(channel, UTC day) -> the counts of int_vobiz__channel_days, from the served rows."""
    zero = {
        "messages": 0,
        "inbound_messages": 0,
        "outbound_messages": 0,
        **{f"{s}_outbound_messages": 0 for s in (*STATUSES, "other_status")},
        "conversations_started": 0,
        "billable_conversations": 0,
        **{f"billable_{c}_conversations": 0 for c in (*CATEGORIES, "other")},
        "calls": 0,
        "answered_calls": 0,
        "call_seconds": 0,
    }
    days: dict[tuple, dict] = {}

    def day_of(channel: object, moment: object) -> dict | None:
        day = _day(moment)
        if channel is None or day is None:
            return None
        return days.setdefault((channel, day), dict(zero))

    for m in _messages(served):
        if (row := day_of(m.get("channel_id"), m.get("created_at"))) is not None:
            row["messages"] += 1
            if m.get("direction") == "inbound":
                row["inbound_messages"] += 1
            elif m.get("direction") == "outbound":
                row["outbound_messages"] += 1
                status = m.get("status") if m.get("status") in STATUSES else "other_status"
                row[f"{status}_outbound_messages"] += 1
    for c in served["conversations"]:
        if (row := day_of(c.get("channel_id"), c.get("started_at"))) is not None:
            row["conversations_started"] += 1
            if c.get("is_billable"):
                row["billable_conversations"] += 1
                category = c.get("category") if c.get("category") in CATEGORIES else "other"
                row[f"billable_{category}_conversations"] += 1
    for call in served["call_logs"]:
        if (row := day_of(call.get("channel_id"), call.get("started_at"))) is not None:
            row["calls"] += 1
            row["answered_calls"] += call.get("answered_at") is not None
            row["call_seconds"] += call.get("duration_seconds") or 0
    return days


def channel_daily(served: dict) -> dict[tuple, dict]:
    phones = {row["id"]: row.get("phone_number") for row in served["channels"]}
    return {key: {"phone_number": phones.get(key[0]), **row} for key, row in _channel_days(served).items()}


def channels(served: dict) -> dict[tuple, dict]:
    days = _channel_days(served)
    marts = {}
    for channel in served["channels"]:
        mine = [row for (channel_id, _), row in days.items() if channel_id == channel["id"]]
        active = [day for (channel_id, day) in days if channel_id == channel["id"]]
        templates = [t for t in served["templates"] if t.get("channel_id") == channel["id"]]
        marts[(channel["id"],)] = {
            "phone_number": channel.get("phone_number"),
            "display_name": channel.get("display_name"),
            **{
                column: sum(row[measure] for row in mine)
                for column, measure in [
                    ("messages", "messages"),
                    ("inbound_messages", "inbound_messages"),
                    ("outbound_messages", "outbound_messages"),
                    ("conversations", "conversations_started"),
                    ("billable_conversations", "billable_conversations"),
                    ("calls", "calls"),
                ]
            },
            "templates": len(templates),
            "approved_templates": sum(str(t.get("status")).lower() == "approved" for t in templates),
            "first_active_day": min(active, default=None),
            "last_active_day": max(active, default=None),
        }
    return marts


def contacts(served: dict) -> dict[tuple, dict]:
    messages: dict[str, list[dict]] = defaultdict(list)
    for m in _messages(served):
        messages[m.get("contact_id")].append(m)
    conversations = Counter(c.get("contact_id") for c in served["conversations"])
    received: dict[str, set] = defaultdict(set)
    read: dict[str, set] = defaultdict(set)
    for row in served["campaign_recipients"]:
        campaign = row.get("campaign_id") or served["recipient_campaigns"][row["id"]]
        if row.get("status") in {"sent", "delivered", "read"}:
            received[row.get("contact_id")].add(campaign)
        if row.get("status") == "read":
            read[row.get("contact_id")].add(campaign)
    # Call logs by the contact's side of the call: the caller of an inbound one, the callee of an outbound.
    calls = Counter(
        call.get("from_number") if call.get("direction") == "inbound" else call.get("to_number")
        for call in served["call_logs"]
        if call.get("direction") in {"inbound", "outbound"}
    )
    marts = {}
    for contact in served["contacts"]:
        mine = messages[contact["id"]]
        times = [_time(m["created_at"]) for m in mine]
        phone = contact.get("phone_number")
        marts[(contact["id"],)] = {
            "first_message_at": min(times, default=None),
            "last_inbound_at": max(
                (_time(m["created_at"]) for m in mine if m.get("direction") == "inbound"), default=None
            ),
            "last_outbound_at": max(
                (
                    _time(m["created_at"])
                    for m in mine
                    if m.get("direction") == "outbound" and m.get("status") != "failed"
                ),
                default=None,
            ),
            "messages": len(mine),
            "conversations": conversations[contact["id"]],
            "campaigns_received": len(received[contact["id"]]),
            "campaigns_read": len(read[contact["id"]]),
            "calls": calls[phone] if phone is not None else 0,
        }
    return marts


def messages(served: dict) -> dict[tuple, dict]:
    channels = {row["id"]: row for row in served["channels"]}
    names = {row["id"]: row.get("name") for row in served["contacts"]}
    categories = {c["id"]: c.get("category") for c in served["conversations"]}
    marts = {}
    for m in _messages(served):
        content = _content(m.get("content"))
        template = m.get("type") == "template"
        marts[(m["id"],)] = {
            "conversation_id": m["conversation_id"],
            "channel_phone_number": channels.get(m.get("channel_id"), {}).get("phone_number"),
            "contact_name": names.get(m.get("contact_id")),
            "conversation_category": categories.get(m["conversation_id"]),
            "status": m.get("status"),
            "body": _text(content.get("body")),
            "media_caption": _text(content.get("caption")),
            "media_filename": _text(content.get("filename")),
            "media_mime_type": _text(content.get("mime_type")),
            "template_name": _text(content.get("name")) if template else None,
            "template_language": _language(content.get("language")) if template else None,
        }
    return marts


def _recipient_campaign(served: dict, row: dict) -> str:
    return row.get("campaign_id") or served["recipient_campaigns"][row["id"]]


def template_performance(served: dict) -> dict[tuple, dict]:
    """Sends of each template, channel and UTC day: campaign recipients and template messages in
    conversations (a message whose wamid a recipient carries counted once, as the recipient's)."""
    templates = {row["id"]: row for row in served["templates"]}
    by_name = {(t.get("channel_id"), t.get("name"), t.get("language")): t for t in served["templates"]}
    campaigns = {row["id"]: row for row in served["campaigns"]}
    wamids = {r.get("meta_message_id") for r in served["campaign_recipients"]} - {None}
    sends = []
    for row in served["campaign_recipients"]:
        campaign = campaigns.get(_recipient_campaign(served, row))
        if campaign is None:
            continue
        template = templates.get(campaign.get("template_id")) or {}
        name = template.get("name") or campaign.get("template_name")
        language = template.get("language") or campaign.get("template_lang")
        status = "pending" if row.get("status") == "queued" else row.get("status")
        moment = row.get("sent_at") or row.get("created_at")
        sends.append((campaign.get("channel_id"), name, language, moment, status, row.get("error_code"),
                      row.get("error_desc")))  # fmt: skip
    for m in _messages(served):
        if (
            m.get("type") != "template"
            or m.get("direction") != "outbound"
            or m.get("meta_message_id") in wamids
        ):
            continue
        content = _content(m.get("content"))
        name, language = _text(content.get("name")), _language(content.get("language"))
        sends.append((m.get("channel_id"), name, language, m.get("created_at"), m.get("status"), None, None))
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for channel, name, language, moment, status, code, desc in sends:
        if channel is not None and name is not None and _day(moment) is not None:
            groups[(channel, name, language, _day(moment))].append((status, code, desc))
    marts = {}
    for key, rows in groups.items():
        status = Counter(row[0] for row in rows)
        sent = status["sent"] + status["delivered"] + status["read"]
        attempted = sent + status["failed"]
        failures = Counter(code for st, code, _ in rows if st == "failed" and code)
        top = min(failures, key=lambda code: (-failures[code], code)) if failures else None
        documented = ("pending", "sent", "delivered", "read", "failed", "skipped")
        template = by_name.get(key[:3]) or {}
        marts[key] = {
            "template_id": template.get("id"),
            "template_category": template.get("category"),
            "template_status": template.get("status"),
            "sends": len(rows),
            "pending": status["pending"],
            "sent": sent,
            "delivered": status["delivered"] + status["read"],
            "read": status["read"],
            "failed": status["failed"],
            "skipped": status["skipped"],
            "other_status": sum(n for value, n in status.items() if value not in documented),
            "attempted": attempted,
            "delivery_rate": (status["delivered"] + status["read"]) / attempted if attempted else None,
            "failure_rate": status["failed"] / attempted if attempted else None,
            "top_error_code": top,
            "top_error_desc": max(
                (d for st, c, d in rows if st == "failed" and c == top and d), default=None
            ),
        }
    return marts


def _business_seconds(start: dt.datetime, end: dt.datetime) -> float:
    """Seconds of [start, end] inside the business hours (`BUSINESS_*`), day by local day."""
    zone = ZoneInfo(BUSINESS_ZONE)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    total, day = 0.0, local_start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= local_end:
        if day.isoweekday() in BUSINESS_DAYS:
            opened = max(local_start, day + dt.timedelta(hours=OPENS))
            closed = min(local_end, day + dt.timedelta(hours=CLOSES))
            total += max((closed - opened).total_seconds(), 0)
        day += dt.timedelta(days=1)
    return total


def response_times(served: dict) -> dict[tuple, dict]:
    marts = {}
    for conversation in served["conversations"]:
        turns = _replies(served["messages"][conversation["id"]])
        if not turns:
            continue
        answered = [(asked, reply, last) for asked, reply, last in turns if reply is not None]
        seconds = [(reply - asked).total_seconds() for asked, reply, _ in answered]
        business = [_business_seconds(asked, reply) for asked, reply, _ in answered]
        in_window = [reply <= last + dt.timedelta(hours=24) for _, reply, last in answered]
        first_answered = turns[0][1] is not None
        marts[(conversation["id"],)] = {
            "channel_id": conversation.get("channel_id"),
            "customer_turns": len(turns),
            "replied_turns": len(answered),
            "replies_within_window": sum(in_window),
            "first_response_seconds": seconds[0] if first_answered else None,
            "first_response_business_seconds": business[0] if first_answered else None,
            "first_response_within_window": in_window[0] if first_answered else None,
            "median_response_seconds": statistics.median(seconds) if seconds else None,
            "median_response_business_seconds": statistics.median(business) if business else None,
        }
    return marts


def _rate_card() -> list[dict]:
    with RATE_CARD.open(newline="") as file:
        return [{**row, "price": decimal.Decimal(row["price"])} for row in csv.DictReader(file)]


def _price(card: list[dict], phone: object, category: object) -> decimal.Decimal | None:
    """The rate card's price for a number and category: the longest calling code it starts with, else `*`."""
    number = phone if isinstance(phone, str) else ""
    matches = [
        row for row in card
        if str(row["category"]).lower() == str(category).lower()
        and (row["calling_code"] == "*" or number.startswith("+" + row["calling_code"]))
    ]  # fmt: skip
    best = max(
        matches, key=lambda row: 0 if row["calling_code"] == "*" else len(row["calling_code"]), default=None
    )
    return best["price"] if best else None


def channel_daily_spend(served: dict) -> dict[tuple, dict]:
    card, phones = _rate_card(), {row["id"]: row.get("phone_number") for row in served["contacts"]}
    marts: dict[tuple, dict] = {}
    for c in served["conversations"]:
        day = _day(c.get("started_at"))
        if not c.get("is_billable") or day is None or c.get("channel_id") is None:
            continue
        row = marts.setdefault(
            (c["channel_id"], day),
            {"billable_conversations": 0, "priced_conversations": 0, "unpriced_conversations": 0,
             "estimated_spend": decimal.Decimal(0)},
        )  # fmt: skip
        price = _price(card, phones.get(c.get("contact_id")), c.get("category"))
        row["billable_conversations"] += 1
        row["priced_conversations" if price is not None else "unpriced_conversations"] += 1
        row["estimated_spend"] += price or 0
    return marts


def campaign_spend(served: dict) -> dict[tuple, dict]:
    card, templates = _rate_card(), {row["id"]: row for row in served["templates"]}
    delivered: dict[str, list[dict]] = defaultdict(list)
    for r in served["campaign_recipients"]:
        if r.get("status") in {"delivered", "read"}:
            delivered[_recipient_campaign(served, r)].append(r)
    marts = {}
    for campaign in served["campaigns"]:
        category = (templates.get(campaign.get("template_id")) or {}).get("category") or "marketing"
        prices = [_price(card, r.get("phone_number"), category) for r in delivered[campaign["id"]]]
        marts[(campaign["id"],)] = {
            "delivered": len(prices),
            "priced_deliveries": sum(p is not None for p in prices),
            "unpriced_deliveries": sum(p is None for p in prices),
            "estimated_spend": sum((p for p in prices if p is not None), decimal.Decimal(0)),
        }
    return marts


EXPECTED = {
    "vobiz__campaign_performance": campaign_performance,
    "vobiz__conversation_metrics": conversation_metrics,
    "vobiz__channel_daily": channel_daily,
    "vobiz__channels": channels,
    "vobiz__contacts": contacts,
    "vobiz__messages": messages,
    "vobiz__template_performance": template_performance,
    "vobiz__response_times": response_times,
    "vobiz__channel_daily_spend": channel_daily_spend,
    "vobiz__campaign_spend": campaign_spend,
}


def loaded_value(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def loaded_marts(pg: Postgres, schema: str = MARTS_SCHEMA) -> dict[str, dict[tuple, dict]]:
    """Every mart as built: mart -> key -> the columns `EXPECTED` computes."""
    marts = {}
    for mart, keys in KEYS.items():
        rows = pg.query(f"SELECT * FROM {schema}.{mart}")  # noqa: S608
        columns = [c for (c,) in pg.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position", schema, mart)]  # fmt: skip
        table = {}
        for row in rows:
            record = {c: loaded_value(v) for c, v in zip(columns, row, strict=True)}
            table[tuple(record[k] for k in keys)] = record
        marts[mart] = table
    return marts


def mart_differences(
    marts: dict[str, dict[tuple, dict]], served: dict, pushed: t.Mapping[str, str] | None = None
) -> list[str]:
    """How the built marts differ from the figures computed from what the emulator serves (empty: equal).

    `pushed`: message id -> a status the pull did not see (a receipt after the tap's lookback) but a
    webhook brought, which `vobiz__messages` must show; `served` is then what the pull saw.
    """
    problems = []
    for mart, compute in EXPECTED.items():
        want, have = compute(served), marts[mart]
        if mart == "vobiz__messages":
            for message_id, status in (pushed or {}).items():
                want[(message_id,)] = {**want[(message_id,)], "status": status}
        if len(have) != len(want) or want.keys() != have.keys():
            problems.append(f"{mart}: {len(want.keys() - have.keys())} rows missing, "
                            f"{len(have.keys() - want.keys())} unexpected")  # fmt: skip
            continue
        wrong = Counter(
            column
            for key, expected in want.items()
            for column, value in expected.items()
            if loaded_value(value) != have[key][column]
        )
        problems += [f"{mart}.{column}: {n} rows differ" for column, n in wrong.items()]
    return problems
