"""Faults of a network service: retried to the same exact output, or failed fast and clearly."""

from __future__ import annotations

import re
import time

import pytest

from tests.expected_output import assert_exact_sync
from tests.tap_runner import emulator_config, run_tap, tap_log
from vobiz_emulator.server import Faults


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def test_injected_faults_give_the_same_output_as_a_clean_run(start_emulator, tmp_path):
    emulator = start_emulator(30, 1500)
    emulator.state.faults = Faults(
        error_rate=0.1,
        malformed_rate=0.02,
        seed=4,
        # Once the run is going (a 429 on the very first request would drop the rate to its floor,
        # and the test would spend a minute recovering from it): a burst of rate limits, then
        # single faults each followed by a success.
        script=[
            *(["ok"] * 12),
            *("429", "429", "429", "429-date", "ok", "429-bare", "ok", "reset", "ok"),
            *("truncated", "ok", "slow:5", "ok", "503", "ok", "malformed", "ok"),
        ],
    )

    # A response 5 s slow times out at 2 s; one slowed by a busy machine (tests run in parallel) does not.
    run = run_tap(emulator_config(emulator, request_timeout=2), tmp_path)

    assert_exact_sync(run, emulator.state.dataset)
    faults = {k: v for k, v in emulator.state.stats.items() if k.startswith("faults:")}
    assert sum(faults.values()) >= 10, faults
    retries = int(re.search(r"Sync completed: .*? \((\d+) retries\)", run.stderr).group(1))
    # One retry per fault, the slow response included.
    assert retries == sum(faults.values()), re.findall(r"Retrying in .*", run.stderr)
    assert "Sync completed" in run.stderr


def test_retry_after_is_honoured(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    emulator.state.faults = Faults(script=["429"], retry_after="3")

    started = time.monotonic()
    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0
    assert time.monotonic() - started >= 3
    waits = [float(w) for w in re.findall(r"Retrying in ([\d.]+)s \(attempt 1", run.stderr)]
    assert len(waits) == 1 and 3.0 <= waits[0] <= 4.0  # Retry-After plus under a second of jitter


def test_a_fault_outlasting_the_retry_budget_fails_with_one_clear_line(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    emulator.state.faults = Faults(error_rate=1.0)

    started = time.monotonic()
    run = run_tap(emulator_config(emulator, max_retry_seconds=4), tmp_path)

    assert run.returncode == 1
    # The retries are waited out once: messages, read under the conversation list, does not ask again.
    assert time.monotonic() - started < 30
    errors = tap_log(run.stderr, "ERROR")
    assert len(errors) == 2, errors  # one per stream
    assert errors[0].startswith(
        "conversations not read whole: Gave up after retrying for 4s (max_retry_seconds)"
    )
    assert errors[1].startswith(
        "messages not read: it is read under each of the conversations, whose list failed"
    )
    assert "Traceback" not in run.stderr
    assert "Sync FAILED: 2 of 2 streams failed" in run.stderr


def test_rejected_credentials_fail_fast_naming_them(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    run = run_tap(emulator_config(emulator, auth_token="not-the-token"), tmp_path)  # noqa: S106

    assert run.returncode == 1
    assert emulator.state.stats["requests"] == 1
    errors = _error_lines(run.stderr)
    assert len(errors) == 1
    assert "401" in errors[0] and "check auth_id and auth_token (or bearer_token)" in errors[0]
    assert "Traceback" not in run.stderr


def test_forbidden_ends_the_stream_naming_the_permission(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    emulator.state.faults = Faults(script=["403"])
    run = run_tap(emulator_config(emulator), tmp_path)
    assert run.returncode == 1
    assert emulator.state.stats["requests"] == 1  # messages does not ask for the refused list again
    errors = tap_log(run.stderr, "ERROR")
    assert "403" in errors[0] and "give the token permission to read it, or deselect the stream" in errors[0]
    assert "check auth_id" not in run.stderr  # the credentials were not what was wrong
    assert "Traceback" not in run.stderr


def test_bad_request_fails_fast_naming_the_request(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    emulator.state.faults = Faults(script=["ok", "ok", "400"])
    run = run_tap(emulator_config(emulator), tmp_path)
    assert run.returncode == 1
    # Two list reads, the 400, and at most the other conversation's page, already in flight.
    assert emulator.state.stats["requests"] <= 4
    errors = _error_lines(run.stderr)
    assert len(errors) == 1
    assert re.search(
        r"400 Bad Request for GET /api/v1/messaging/conversations/[0-9a-f-]+/messages\?limit=100", errors[0]
    )


def test_a_conversation_deleted_meanwhile_is_skipped_and_counted(start_emulator, tmp_path):
    emulator = start_emulator(10, 400)
    emulator.state.faults = Faults(script=["ok", "ok", "404"])

    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0
    assert (
        "1 conversations skipped (404): deleted while the run read them, so nothing was left to read; "
        "harmless" in tap_log(run.stderr, "INFO")
    )
    skipped = re.search(r"Skipping conversation ([0-9a-f-]+): 404", run.stderr)
    assert skipped
    dataset = emulator.state.dataset
    assert set(run.ids("messages")) == {
        m["id"] for c in dataset.conversations if c.id != skipped.group(1) for m in c.messages
    }


def test_a_cursor_loop_ends_with_a_clear_error(start_emulator, tmp_path):
    emulator = start_emulator(3, 600, days=1)
    emulator.state.faults = Faults(script=["ok", "ok", "loop", "loop", "loop"])

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path)  # the script hits one conversation

    assert run.returncode == 1
    assert emulator.state.stats["requests:messages"] == 2
    errors = _error_lines(run.stderr)
    assert len(errors) == 1 and "a second time" in errors[0]
    assert "Traceback" not in run.stderr


def test_plain_http_to_a_remote_host_is_refused_before_any_request(tmp_path):
    config = {"auth_id": "MA_X", "auth_token": "secret", "api_url": "http://api.vobiz.ai/api/v1/messaging"}
    run = run_tap(config, tmp_path)
    assert run.returncode == 1
    assert "api_url must use https: api.vobiz.ai is not a loopback host" in run.stderr
    assert run.messages == []


def test_bad_records_never_stop_the_run_and_are_counted(start_emulator, tmp_path):
    emulator = start_emulator(3, 60, days=1)
    dataset = emulator.state.dataset
    conversation = max(dataset.conversations, key=lambda c: len(c.messages))
    newest, oldest = conversation.messages[-1], conversation.messages[0]
    # Keep the emulator's (created_at, id) order intact while breaking the values.
    newest["created_at"] = "not a timestamp"
    oldest["id"] = ""
    dataset.conversations[0].record["is_billable"] = "yes"

    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0
    messages = {r["id"]: r for r in run.records["messages"]}
    assert "" not in messages
    assert messages[newest["id"]]["created_at"] is None
    assert messages[newest["id"]]["malformed_fields"] == {"created_at": "not a timestamp"}
    conversations = {r["id"]: r for r in run.records["conversations"]}
    assert conversations[dataset.conversations[0].id]["malformed_fields"] == {"is_billable": "yes"}
    assert "1 records dropped without an id" in run.stderr
    assert "2 malformed fields set aside" in run.stderr


def test_a_terminated_run_exits_non_zero_after_writing_its_state(start_emulator, tmp_path):
    import signal
    import subprocess

    from tests.tap_runner import tap_command

    emulator = start_emulator(40, 2000)
    emulator.state.faults = Faults(latency_ms=50)
    process = subprocess.Popen(
        tap_command(emulator_config(emulator), tmp_path, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 128 + signal.SIGTERM
    assert "Sync interrupted by SIGTERM: " in stderr
    messages = [__import__("json").loads(line) for line in stdout.splitlines()]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    # Conversations completed and were bookmarked; messages were cut short, so the
    # state holds no bookmark for them: a rerun reads them all again.
    assert states[-1]["bookmarks"]["conversations"]["replication_key_value"]
    assert "replication_key_value" not in states[-1]["bookmarks"].get("messages", {})
    assert any(m["type"] == "RECORD" and m["stream"] == "messages" for m in messages)


@pytest.mark.parametrize(
    ("api_url", "line"),
    [
        (
            "https://no-such-host.invalid/api/v1/messaging",
            "cannot resolve host no-such-host.invalid; check api_url",
        ),
        ("http://127.0.0.1:9/api/v1/messaging", "connection refused by 127.0.0.1:9; check api_url"),
    ],
)
def test_a_host_that_never_answers_is_one_line_without_retries(tmp_path, api_url, line):
    config = {"auth_id": "MA_X", "auth_token": "secret-token", "api_url": api_url}

    run = run_tap(config, tmp_path)

    assert run.returncode == 1
    errors = _error_lines(run.stderr)
    assert len(errors) == 1 and errors[0].endswith("Cannot reach the Vobiz API: " + line), errors
    assert "Retrying" not in run.stderr


def test_sigterm_while_the_target_reads_slowly_still_ends_with_the_state(start_emulator, tmp_path):
    import json
    import signal
    import subprocess

    from tests.tap_runner import tap_command

    emulator = start_emulator(200, 20_000)
    with (tmp_path / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            tap_command(emulator_config(emulator), tmp_path, None), stdout=subprocess.PIPE, stderr=stderr
        )
        assert process.stdout is not None
        # A target that reads a little, then stalls: the tap blocks writing RECORDs to the full pipe.
        output = process.stdout.read(65536)
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        while chunk := process.stdout.read1(4096):
            output += chunk
            time.sleep(0.001)
        returncode = process.wait(timeout=30)
    log = (tmp_path / "stderr.log").read_text()

    assert returncode == 128 + signal.SIGTERM
    assert "BufferError" not in log and "Traceback" not in log
    messages = [json.loads(line) for line in output.splitlines()]  # every line whole
    assert messages[-1]["type"] == "STATE"
    assert any(m["type"] == "RECORD" and m["stream"] == "messages" for m in messages)
