"""The emulator's webhooks: its subscription API, the `vobiz-webhooks` subscription commands against it,
and its sender's signed deliveries reaching a real receiver, with the retries, duplicates, repeats and
reordering the docs allow."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from harness.webhook_receiver import running_receiver, subscribe
from tap_vobiz.webhook_signature import verify
from tests.doc_commands import bash_block
from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, RunningEmulator

AUTH = {"X-Auth-ID": DEFAULT_AUTH_ID, "X-Auth-Token": DEFAULT_AUTH_TOKEN}
ACTIVITY = {
    "hours": 6,
    "new_conversations": 4,
    "new_messages": 40,
    "status_changes": 30,
    "receipts": 20,
    "new_calls": 3,
}
SECRET = "emulator-test-secret"  # noqa: S105 - a test secret


def captured(location: Path) -> list[dict]:
    return [
        json.loads(text)
        for segment in sorted(location.glob("segments/*/*.jsonl"))
        for text in segment.read_text(encoding="utf-8").splitlines()
    ]


def cli(*arguments: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tap_vobiz.webhooks_cli", *arguments, "--config", str(config)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


def tap_config(tmp_path: Path, emulator: RunningEmulator) -> Path:
    path = tmp_path / "config.json"
    config = {"auth_id": DEFAULT_AUTH_ID, "auth_token": DEFAULT_AUTH_TOKEN, "api_url": emulator.api_url}
    path.write_text(json.dumps(config))
    return path


def deliver_activity(emulator: RunningEmulator, options: dict | None = None) -> dict:
    base = emulator.server.base_url
    if options is not None:
        requests.post(f"{base}/_emulator/webhooks", json=options, timeout=10).raise_for_status()
    result = requests.post(f"{base}/_emulator/activity", json=ACTIVITY, timeout=30).json()
    report = requests.post(f"{base}/_emulator/webhooks/wait", json={"timeout": 60}, timeout=90).json()
    assert report["done"], report["pending"]
    return {"activity": result, **report}


def test_the_subscription_api_answers_as_documented_and_never_returns_the_secret(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    emulator = start_emulator()
    url = f"{emulator.api_url}/webhooks"
    created = requests.post(
        url, timeout=10, json={"url": "https://hooks.example.com/v", "secret": "s"}, headers=AUTH
    )
    assert created.status_code == 201
    subscription = created.json()
    assert set(subscription) == {"id", "url", "status", "created_at", "updated_at"}
    assert subscription["url"] == "https://hooks.example.com/v" and subscription["status"] == "active"
    listed = requests.get(url, timeout=10, headers=AUTH)
    assert listed.status_code == 200 and listed.json() == {"items": [subscription]}
    assert (
        requests.post(
            url, timeout=10, json={"url": "http://hooks.example.com", "secret": "s"}, headers=AUTH
        ).status_code
        == 400
    )
    assert (
        requests.post(url, timeout=10, json={"url": "https://hooks.example.com"}, headers=AUTH).status_code
        == 400
    )
    assert requests.get(url, timeout=10).status_code == 401
    deleted = requests.delete(f"{url}/{subscription['id']}", timeout=10, headers=AUTH)
    assert deleted.status_code == 204 and deleted.content == b""
    assert requests.delete(f"{url}/{subscription['id']}", timeout=10, headers=AUTH).status_code == 404
    assert requests.get(url, timeout=10, headers=AUTH).json() == {"items": []}


def test_the_subscription_commands_show_a_new_secret_once_and_list_and_delete(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = start_emulator()
    config = tap_config(tmp_path, emulator)
    subscribed = cli("subscribe", "--url", "https://hooks.example.com/vobiz", config=config)
    assert subscribed.returncode == 0, subscribed.stderr
    first, second = subscribed.stdout.splitlines()
    subscription_id = first.split()[1].rstrip(":")
    assert first == f"subscribed {subscription_id}: https://hooks.example.com/vobiz (active)"
    secret = second.rsplit(": ", 1)[1]
    assert second.startswith("secret (shown once; give it to the receiver as VOBIZ_WEBHOOK_SECRET): ")
    assert len(secret) >= 40
    assert emulator.state.webhooks.subscriptions[subscription_id].secret == secret
    listed = cli("list", config=config)
    assert listed.stdout.startswith(f"{subscription_id}  active  https://hooks.example.com/vobiz  created ")
    assert secret not in listed.stdout
    assert cli("unsubscribe", subscription_id, config=config).stdout == f"unsubscribed {subscription_id}\n"
    assert cli("list", config=config).stdout == "no webhook subscriptions\n"
    again = cli("unsubscribe", subscription_id, config=config)
    assert again.returncode == 2
    assert again.stderr == (
        f'vobiz-webhooks: DELETE /webhooks/{subscription_id} answered 404: {{"error": "webhook not found"}}\n'
    )


def test_refused_credentials_are_one_line_without_the_token(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = start_emulator()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"auth_id": "MA_X", "auth_token": "wrong-token", "api_url": emulator.api_url})
    )
    result = cli("list", config=config)
    assert result.returncode == 2
    assert (
        result.stderr
        == 'vobiz-webhooks: GET /webhooks answered 401: {"error": "missing or invalid credentials"}\n'
    )


def test_the_emulators_activity_reaches_a_receiver_signed_and_exactly(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = start_emulator(conversations=30, messages=800)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    capture = tmp_path / "capture"
    with running_receiver(capture, secret=SECRET) as receiver:
        subscribed = cli(
            "subscribe", "--url", receiver.url + "/vobiz", "--secret-file", str(secret_file),
            config=tap_config(tmp_path, emulator),
        )  # fmt: skip
        assert subscribed.returncode == 0 and SECRET not in subscribed.stdout
        report = deliver_activity(emulator)
    events = report["events"]
    kinds = Counter(event["event_type"] for event in events)
    assert kinds["message.status"] > 10 and kinds["message.inbound"] > 0 and kinds["call.connect"] == 3
    lines = captured(capture)
    assert sorted(line["body"] for line in lines) == sorted(event["body"] for event in events)
    for line in lines:
        assert verify(SECRET, line["body"].encode(), line["headers"]["x-webhook-signature"])
        assert line["headers"]["x-webhook-event"] == json.loads(line["body"])["event_type"]
    # Every status is a message's current one, by its wamid, as the API serves it.
    exported = requests.get(f"{emulator.server.base_url}/_emulator/export", timeout=30).json()
    by_wamid = {
        m["meta_message_id"]: m
        for ms in exported["messages"].values()
        for m in ms
        if m.get("meta_message_id")
    }
    by_wamid |= {r["meta_message_id"]: r for r in exported["campaign_recipients"] if r.get("meta_message_id")}
    moved = {*report["activity"]["status_changes"], *report["activity"]["recipient_changes"]}
    moved |= set(report["activity"]["new_messages"])
    order = ("sent", "delivered", "read", "failed")
    latest: dict[str, tuple[int, int, str]] = {}
    for event in events:
        body = json.loads(event["body"])
        if body["event_type"] == "message.status":
            [status] = body["payload"]["entry"][0]["changes"][0]["value"]["statuses"]
            key = (int(status["timestamp"]), order.index(status["status"]), status["status"])
            latest[status["id"]] = max(latest.get(status["id"], key), key)
    assert latest
    for wamid, (_, _, status) in latest.items():
        if by_wamid[wamid]["id"] in moved:
            assert status == by_wamid[wamid]["status"], wamid
    # Each status names the phone number that sent the message: its channel's, or its campaign's.
    phone_of = {channel["id"]: channel["phone_number_id"] for channel in exported["channels"]}
    campaign_channel = {campaign["id"]: campaign["channel_id"] for campaign in exported["campaigns"]}
    for event in events:
        body = json.loads(event["body"])
        if body["event_type"] == "message.status":
            value = body["payload"]["entry"][0]["changes"][0]["value"]
            sent_by = by_wamid[value["statuses"][0]["id"]]
            channel_id = (
                sent_by.get("channel_id") or campaign_channel[exported["recipient_campaigns"][sent_by["id"]]]
            )
            assert value["metadata"]["phone_number_id"] == phone_of[channel_id]


def test_retries_duplicates_repeats_and_reordering_as_the_options_say(
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
        options = {"duplicate_rate": 0.3, "repeat_rate": 0.3, "reorder": True, "seed": 3, "workers": 1}
        report = deliver_activity(emulator, options)
    events = {event["event_id"]: event for event in report["events"]}
    received = [json.loads(line["body"])["event_id"] for line in captured(capture)]
    copies = Counter(received)
    assert set(copies) == set(events)
    duplicated = {event_id for event_id, count in copies.items() if count == 2}
    assert duplicated == {a["event_id"] for a in report["attempts"] if a["duplicate"]} and duplicated
    repeats = [event for event in events.values() if event["repeat_of"]]
    assert repeats
    for repeat in repeats:
        original = json.loads(events[repeat["repeat_of"]]["body"])
        assert json.loads(repeat["body"])["payload"] == original["payload"]
    occurred = [json.loads(events[event_id]["body"])["occurred_at"] for event_id in dict.fromkeys(received)]
    assert occurred != sorted(occurred)  # one worker: the order sent is the order received


def test_a_failing_and_a_slow_receiver_get_the_same_event_again(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    answers = ["500", "slow", "503"]  # to the first event's deliveries; then 200 for every request
    seen: list[tuple[str, bytes, str]] = []

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            event_id = json.loads(body)["event_id"]
            seen.append((event_id, body, self.headers["X-Webhook-Signature"]))
            answer = answers.pop(0) if answers and event_id == seen[0][0] else "200"
            if answer == "slow":
                threading.Event().wait(1.5)
                answer = "200"
            self.send_response(int(answer))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        emulator = start_emulator(conversations=30, messages=800)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        requests.post(
            f"{emulator.api_url}/webhooks", json={"url": url, "secret": SECRET}, headers=AUTH, timeout=10
        ).raise_for_status()
        report = deliver_activity(emulator, {"timeout_seconds": 0.5, "retry_seconds": 0.01})
    finally:
        server.shutdown()
        server.server_close()
    first = seen[0][0]
    attempts = [attempt for attempt in report["attempts"] if attempt["event_id"] == first]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [
        (1, 500),
        (2, "ReadTimeout"),
        (3, 503),
        (4, 200),
    ]
    assert len({delivery for delivery in seen if delivery[0] == first}) == 1  # the same bytes and signature
    assert all(attempt["outcome"] == 200 for attempt in report["attempts"] if attempt["event_id"] != first)


def test_the_served_data_is_the_same_with_or_without_a_subscription() -> None:
    exports = []
    for subscribed in (False, True):
        with RunningEmulator(Dataset(30, 800, seed=5)) as emulator:
            if subscribed:
                requests.post(
                    f"{emulator.api_url}/webhooks",
                    json={"url": "http://127.0.0.1:9/", "secret": SECRET},
                    headers=AUTH,
                    timeout=10,
                ).raise_for_status()
                requests.post(
                    f"{emulator.server.base_url}/_emulator/webhooks", json={"max_attempts": 1}, timeout=10
                )
            result = requests.post(
                f"{emulator.server.base_url}/_emulator/activity", json=ACTIVITY, timeout=30
            ).json()
            result.pop("webhook_events", None)
            exports.append(
                (result, requests.get(f"{emulator.server.base_url}/_emulator/export", timeout=30).json())
            )
    assert exports[0] == exports[1]


def test_the_setup_docs_webhooks_md_gives_subscribes_and_captures_signed_deliveries(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """docs/webhooks.md, "Setting it up", as typed: a secret file, `subscribe`, `serve`."""
    emulator = start_emulator(conversations=30, messages=800)
    tap_config(tmp_path, emulator)
    make_secret, subscribe, serve = bash_block("docs/webhooks.md", "Setting it up")
    bin_dir = Path(sys.executable).parent
    typed = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{make_secret}\n{subscribe}".replace(".venv/bin/", f"{bin_dir}/")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert typed.returncode == 0, typed.stderr
    [subscription] = emulator.state.webhooks.subscriptions.values()
    assert subscription.secret == (tmp_path / "webhook-secret").read_text().strip()
    assert (tmp_path / "webhook-secret").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert subscription.url == "https://hooks.example.com/vobiz"
    port = free_port()
    receiver = subprocess.Popen(
        ["bash", "-c", "exec " + serve.replace(".venv/bin/", f"{bin_dir}/").replace("8080", str(port))],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().startswith(f"listening on http://0.0.0.0:{port}")
        # Vobiz would reach it through the proxy at hooks.example.com: point the subscription here.
        subscription.url = f"http://127.0.0.1:{port}/vobiz"
        report = deliver_activity(emulator)
    finally:
        receiver.terminate()
        _, log = receiver.communicate(timeout=30)
    lines = captured(tmp_path / "webhook-capture")
    assert sorted(line["body"] for line in lines) == sorted(event["body"] for event in report["events"])
    assert f"stopped: {len(lines)} deliveries captured" in log and subscription.secret not in log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_receipt_days_late_changes_the_message_and_sends_its_status(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = start_emulator(conversations=30, messages=800)
    base = emulator.server.base_url
    exported = requests.get(f"{base}/_emulator/export", timeout=30).json()
    conversation_id, old = next(
        (conversation_id, m)
        for conversation_id, ms in exported["messages"].items()
        for m in ms
        if m["direction"] == "outbound"
        and m["status"] == "delivered"
        and m.get("meta_message_id")
        and m["created_at"] < "2026-10-20"
    )
    capture = tmp_path / "capture"
    with running_receiver(capture, secret=SECRET) as receiver:
        assert subscribe(emulator.api_url, receiver)["url"] == receiver.url
        changed = requests.post(
            f"{base}/_emulator/statuses", json={"ids": [old["id"]], "status": "read"}, timeout=10
        )
        assert changed.json() == {"changed": [old["id"]], "webhook_events": 1}
        requests.post(f"{base}/_emulator/webhooks/wait", json={"timeout": 30}, timeout=60).raise_for_status()
    [line] = captured(capture)
    [status] = json.loads(line["body"])["payload"]["entry"][0]["changes"][0]["value"]["statuses"]
    now = requests.get(f"{base}/_emulator/export", timeout=30).json()
    assert status["id"] == old["meta_message_id"] and status["status"] == "read"
    assert (
        int(status["timestamp"])
        == int(dt.datetime.fromisoformat(now["now"].replace("Z", "+00:00")).timestamp()) - 1
    )
    served = next(m for m in now["messages"][conversation_id] if m["id"] == old["id"])
    assert served["status"] == "read"
    refused = requests.post(
        f"{base}/_emulator/statuses", json={"ids": ["nope"], "status": "read"}, timeout=10
    )
    assert refused.status_code == 400
