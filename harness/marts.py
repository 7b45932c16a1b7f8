"""The warehouse models' figures computed in Python from what the emulator serves, and how the
marts dbt built differ from them: used by `make demo` and the tests, so both check the same thing.

Written from the marts' documented definitions (transform/models/marts/_vobiz__models.yml), not
from their SQL: each figure is worked out here row by row from the served records.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import statistics
import typing as t
from collections import Counter, defaultdict

if t.TYPE_CHECKING:
    from harness.pipeline_stack import Postgres

MARTS_SCHEMA = "vobiz_analytics"
CATEGORIES = ("service", "marketing", "utility", "authentication")
# The columns compared, per mart, and its key.
KEYS = {
    "vobiz__campaign_performance": ("campaign_id",),
    "vobiz__conversation_metrics": ("conversation_id",),
    "vobiz__channel_daily": ("channel_id", "day"),
    "vobiz__contacts": ("contact_id",),
    "vobiz__messages": ("message_id",),
}


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _day(value: object) -> dt.datetime | None:
    moment = _time(value)
    return moment.replace(hour=0, minute=0, second=0) if moment else None


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
            "delivery_rate": delivered / sent if sent else None,
            "read_rate": status["read"] / delivered if delivered else None,
            "top_error_code": top,
            "top_error_desc": max((d for d in descs if d is not None), default=None),
            "median_seconds_to_read": statistics.median(reads) if reads else None,
            "api_sent_count": campaign.get("sent_count"),
            "api_read_count": campaign.get("read_count"),
        }
    return marts


def conversation_metrics(served: dict) -> dict[tuple, dict]:
    marts = {}
    for conversation in served["conversations"]:
        items = served["messages"][conversation["id"]]
        inbound = [_time(m["created_at"]) for m in items if m.get("direction") == "inbound"]
        outbound = [m for m in items if m.get("direction") == "outbound"]
        first_in = min((m for m in inbound if m), default=None)
        responses = [_time(m["created_at"]) for m in outbound]
        first_out = min((m for m in responses if m and first_in and m > first_in), default=None)
        marts[(conversation["id"],)] = {
            "channel_id": conversation.get("channel_id"),
            "category": conversation.get("category"),
            "is_billable": conversation.get("is_billable"),
            "status": conversation.get("status"),
            "inbound_messages": len(inbound),
            "outbound_messages": len(outbound),
            "first_inbound_at": first_in,
            "first_response_at": first_out,
            "first_response_seconds": (first_out - first_in).total_seconds()
            if first_out and first_in
            else None,
            "outbound_failed": sum(m.get("status") == "failed" for m in outbound),
            "outbound_read": sum(m.get("status") == "read" for m in outbound),
        }
    return marts


def channel_daily(served: dict) -> dict[tuple, dict]:
    phones = {row["id"]: row.get("phone_number") for row in served["channels"]}
    zero = {
        "messages_inbound": 0,
        "messages_outbound": 0,
        "messages_failed": 0,
        "conversations_started": 0,
        "billable_conversations": 0,
        **{f"billable_{c}_conversations": 0 for c in CATEGORIES},
        "calls": 0,
        "calls_answered": 0,
        "call_seconds": 0,
    }
    marts: dict[tuple, dict] = {}

    def day_of(channel: object, moment: object) -> dict | None:
        day = _day(moment)
        if channel is None or day is None:
            return None
        return marts.setdefault((channel, day), {"phone_number": phones.get(channel), **zero})

    for m in _messages(served):
        if (row := day_of(m.get("channel_id"), m.get("created_at"))) is not None:
            row["messages_inbound" if m.get("direction") == "inbound" else "messages_outbound"] += m.get(
                "direction"
            ) in {"inbound", "outbound"}
            row["messages_failed"] += m.get("status") == "failed"
    for c in served["conversations"]:
        if (row := day_of(c.get("channel_id"), c.get("started_at"))) is not None:
            row["conversations_started"] += 1
            if c.get("is_billable"):
                row["billable_conversations"] += 1
                if c.get("category") in CATEGORIES:
                    row[f"billable_{c['category']}_conversations"] += 1
    for call in served["call_logs"]:
        if (row := day_of(call.get("channel_id"), call.get("started_at"))) is not None:
            row["calls"] += 1
            row["calls_answered"] += call.get("answered_at") is not None
            row["call_seconds"] += call.get("duration_seconds") or 0
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
                (_time(m["created_at"]) for m in mine if m.get("direction") == "outbound"), default=None
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
            "template_language": _text(content.get("language")) if template else None,
        }
    return marts


EXPECTED = {
    "vobiz__campaign_performance": campaign_performance,
    "vobiz__conversation_metrics": conversation_metrics,
    "vobiz__channel_daily": channel_daily,
    "vobiz__contacts": contacts,
    "vobiz__messages": messages,
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


def mart_differences(marts: dict[str, dict[tuple, dict]], served: dict) -> list[str]:
    """How the built marts differ from the figures computed from what the emulator serves (empty: equal)."""
    problems = []
    for mart, compute in EXPECTED.items():
        want, have = compute(served), marts[mart]
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
