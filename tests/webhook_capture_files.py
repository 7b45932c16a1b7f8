"""Webhook captures written by hand, as the receiver writes them (docs/webhooks.md, "The capture").

Deliveries follow Vobiz's documented envelope (`event_id`, `event_type`, `account_id`,
`occurred_at`, `payload`) around Meta's webhook objects; every line is what a verified
delivery becomes in a segment.
"""

from __future__ import annotations

import json
import typing as t
import uuid
from pathlib import Path

ACCOUNT = "MA_TEST0001"
PHONE_NUMBER_ID = "106540352242922"


def envelope(event_type: str, value: dict, *, event_id: str | None = None, bare: bool = False) -> dict:
    """A delivery's body: `value` inside Meta's whole envelope, or bare (`bare`), as the docs show both."""
    field = "calls" if event_type.startswith("call.") else "messages"
    payload = (
        value
        if bare
        else {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": field, "value": value}]}],
        }
    )
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "account_id": ACCOUNT,
        "occurred_at": "2026-12-01T10:00:00Z",
        "payload": payload,
    }


def status_value(*statuses: dict) -> dict:
    """A change `value` carrying `statuses[]`."""
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": list(statuses),
    }


def status(wamid: str, name: str, unix_seconds: int, recipient: str = "919800000001", **extra: t.Any) -> dict:
    """One Meta status object."""
    return {"id": wamid, "status": name, "timestamp": str(unix_seconds), "recipient_id": recipient, **extra}


def line(body: dict | str, received_at: str = "2026-12-01T10:00:01.000000Z") -> bytes:
    """A segment line: the body's raw text (as signed), received_at and the headers, ending in a newline."""
    raw = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    event_type = body.get("event_type", "") if isinstance(body, dict) else ""
    headers = {
        "content-type": "application/json",
        "x-webhook-event": event_type,
        "x-webhook-signature": "0" * 64,
    }
    record = {"v": 1, "received_at": received_at, "headers": headers, "body": raw}
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def segment(root: Path, writer: str, seq: int) -> Path:
    """The path of a writer's segment (its folder made)."""
    path = root / "segments" / writer / f"{seq:012d}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def append(root: Path, writer: str, seq: int, *lines: bytes) -> Path:
    """Append lines (or any bytes: a torn line) to a writer's segment, as the writer does."""
    path = segment(root, writer, seq)
    with path.open("ab") as file:
        for text in lines:
            file.write(text)
    return path
