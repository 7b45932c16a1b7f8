"""The receiver's capture read by the tap: the emulator's signed deliveries, with retries, duplicates,
WhatsApp repeats and reordering, written by `vobiz-webhooks serve`, become each event and each status once."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from harness.webhook_receiver import running_receiver
from tests.test_capture_streams import CAPTURE_STREAMS, _run_capture
from tests.test_webhook_emulator import AUTH, SECRET, captured, deliver_activity
from tests.test_webhook_receiver import SECRET as RECEIVER_SECRET
from tests.test_webhook_receiver import envelope as receiver_envelope
from tests.test_webhook_receiver import post
from vobiz_emulator.server import RunningEmulator

ORDER = ("sent", "delivered", "read", "failed")


def _values(body: dict, field: str) -> list[dict]:
    payload = body["payload"]
    if "entry" not in payload:
        return payload.get(field, [])
    return [
        item
        for entry in payload["entry"]
        for change in entry["changes"]
        for item in change["value"].get(field, [])
    ]


def test_what_the_receiver_captured_is_each_event_and_status_once_in_the_taps_output(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = start_emulator(conversations=30, messages=800)
    capture = tmp_path / "capture"
    with running_receiver(capture, secret=SECRET) as receiver:
        requests.post(
            f"{emulator.api_url}/webhooks",
            json={"url": receiver.url, "secret": SECRET},
            headers=AUTH,
            timeout=10,
        ).raise_for_status()
        options = {"duplicate_rate": 0.3, "repeat_rate": 0.3, "reorder": True, "seed": 5, "workers": 2}
        report = deliver_activity(emulator, options)
    bodies = {event["event_id"]: json.loads(event["body"]) for event in report["events"]}
    assert len(captured(capture)) > len(bodies)  # duplicates reached the capture

    run = _run_capture(tmp_path, capture, streams=CAPTURE_STREAMS)

    assert run.returncode == 0, run.stderr
    assert sorted(r["event_id"] for r in run.records["webhook_events"]) == sorted(bodies)
    statuses = {
        (s["id"], s["status"], int(s["timestamp"]))
        for body in bodies.values()
        if body["event_type"] == "message.status"
        for s in _values(body, "statuses")
    }
    loaded = run.records["message_statuses"]
    assert len(loaded) == len(statuses)
    assert {(r["wamid"], r["status"], r["status_at"]) for r in loaded} == {
        (wamid, name, _rfc3339(seconds)) for wamid, name, seconds in statuses
    }
    calls = {
        (c["id"], c.get("event"), c.get("timestamp"), c.get("status"))
        for body in bodies.values()
        if body["event_type"].startswith("call.")
        for c in _values(body, "calls")
    }
    assert len(run.records["call_events"]) == len(calls) > 0
    # The latest status of each message by WhatsApp's time is the one the API serves for it now.
    exported = requests.get(f"{emulator.server.base_url}/_emulator/export", timeout=30).json()
    rows = [m for ms in exported["messages"].values() for m in ms] + exported["campaign_recipients"]
    served = {row["meta_message_id"]: row for row in rows if row.get("meta_message_id")}
    moved = {*report["activity"]["status_changes"], *report["activity"]["recipient_changes"]}
    moved |= set(report["activity"]["new_messages"])
    latest: dict[str, tuple[str, int, str]] = {}
    for row in loaded:
        key = (row["status_at"], ORDER.index(row["status"]), row["status"])
        latest[row["wamid"]] = max(latest.get(row["wamid"], key), key)
    checked = [wamid for wamid in latest if served[wamid]["id"] in moved]
    assert checked
    assert {w: latest[w][2] for w in checked} == {w: served[w]["status"] for w in checked}


def _rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_capture_in_an_object_store_is_read_on_from_the_bookmark_across_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two receivers writing to a local S3 server (moto's): the tap reads `s3://` as it reads a directory."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "FSSPEC_S3_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        # A bucket of its own: moto's servers in one process share their buckets.
        bucket = f"captures-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        location = f"s3://{bucket}/vobiz"
        with (
            running_receiver(location, secret=RECEIVER_SECRET) as first,
            running_receiver(location, secret=RECEIVER_SECRET) as second,
        ):
            for number in range(6):
                assert post((first, second)[number % 2].url, receiver_envelope(f"e{number}")) == 200
            before = _run_capture(tmp_path, location, streams=("webhook_events",))
            for number in range(6, 10):
                assert post((first, second)[number % 2].url, receiver_envelope(f"e{number}")) == 200
            after = _run_capture(tmp_path, location, state=before.last_state, streams=("webhook_events",))
    finally:
        server.stop()

    assert before.returncode == after.returncode == 0, after.stderr
    assert sorted(r["event_id"] for r in before.records["webhook_events"]) == [f"e{n}" for n in range(6)]
    assert sorted(r["event_id"] for r in after.records["webhook_events"]) == [f"e{n}" for n in range(6, 10)]
    assert len(after.last_state["bookmarks"]["webhook_events"]["writers"]) == 2
