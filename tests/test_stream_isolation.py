"""One stream's trouble never stops the account (issue 27).

A list served whole whatever page is asked is read once and exactly; a server that ignores
`page` is read for what it served (whole when that accounts for `total`, else incomplete:
kept bookmark, no ACTIVATE_VERSION, one WARNING). An endpoint that refuses the token, does
not exist on the plan, or keeps failing ends its own stream (and the streams read under it)
with one ERROR line: every other stream is read exactly with its STATE, and the run exits 1
with a summary. Each test runs the real CLI against the emulator.
"""

from __future__ import annotations

import re

import pytest

from harness import pipeline_stack as stack
from tests.expected_output import assert_exact_sync, assert_tables_equal, upsert
from tests.tap_runner import TapRun, emulator_config, run_tap, tap_log
from vobiz_emulator.server import Faults

EVERY_STREAM = stack.TABLES
ACCOUNT = {"contacts": 250, "canned_responses": 28, "templates_per_channel": 30, "campaigns": 12}
BOOKMARKED = ("conversations", "messages", "contacts", "campaigns", "campaign_recipients", "call_logs")


def _errors(run: TapRun) -> list[str]:
    return tap_log(run.stderr, "ERROR")


@pytest.mark.parametrize("envelope", ["full", "without has_more and total"])
def test_lists_served_whole_whatever_page_is_asked_are_read_once_and_exactly(
    start_emulator, tmp_path, envelope
):
    # `{"items": [28 rows], "total": 28, "page": 1, "limit": 20, "has_more": false}` for every request.
    shape = {"whole": ["canned_responses", "templates"]}
    if envelope != "full":
        shape["omit"] = ["has_more", "total"]
    emulator = start_emulator(10, 100, account=ACCOUNT, shape=shape)
    streams = ("channels", "templates", "canned_responses")

    run = run_tap(emulator_config(emulator), tmp_path, streams=streams)

    # Before: "Vobiz served page 1 ... when asked for page 2", 0 rows of any stream, exit 1.
    assert_exact_sync(run, emulator.state.dataset, streams)
    assert len(run.records["canned_responses"]) == 28 and len(run.records["templates"]) == 3 * 30
    assert emulator.state.stats["requests:canned_responses"] == 1
    assert emulator.state.stats["requests:templates"] == 3  # one per channel
    assert all(run.activated(stream) for stream in streams)
    assert not tap_log(run.stderr, "WARNING")


def test_conversations_answered_whole_with_a_total_are_read_once(start_emulator, tmp_path):
    # `{"items": [600 conversations], "total": 600}`: no paging documented, none offered.
    shape = {"conversations": "pages", "whole": ["conversations"], "omit": ["page", "limit", "has_more"]}
    emulator = start_emulator(600, 3000, shape=shape)

    run = run_tap(emulator_config(emulator), tmp_path)

    # Before (issue 33, 11): page 2 planned from the `limit` asked, "a paging loop", 0 of 3,000 messages.
    assert_exact_sync(run, emulator.state.dataset)
    assert emulator.state.stats["requests:conversations"] == 2  # once for each stream
    assert run.bookmark("conversations") and run.bookmark("messages")


def test_a_server_that_ignores_page_short_of_its_total_leaves_that_stream_incomplete(
    start_emulator, tmp_path
):
    # Contacts: every page asked is answered with page 1 (100 of a total of 250).
    emulator = start_emulator(10, 100, account=ACCOUNT, shape={"ignore_page": ["contacts"]})
    streams = ("contacts", "channels", "canned_responses")
    state = {
        "bookmarks": {
            "contacts": {"replication_key": "updated_at", "replication_key_value": "2026-10-01T00:00:00Z"}
        }
    }

    run = run_tap(emulator_config(emulator), tmp_path, state=state, streams=streams)

    # Before: "Vobiz served page 1 of .../contacts when asked for page 2", exit 1, no other stream read.
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.last_state["bookmarks"]["contacts"] == state["bookmarks"]["contacts"]
    assert not any(m["type"] == "ACTIVATE_VERSION" and m["stream"] == "contacts" for m in run.messages)
    warnings = tap_log(run.stderr, "WARNING")
    assert len(warnings) == 1, warnings
    assert "/contacts could not be read whole" in warnings[0]
    assert "served page 1 when asked for page 2" in warnings[0] and "of a total of 250" in warnings[0]
    assert "no ACTIVATE_VERSION is sent" in warnings[0]
    # The contacts it did serve are emitted, once; the other streams are exact and activated.
    assert len(run.records["contacts"]) == len(set(run.ids("contacts"))) == 100
    others = ("channels", "canned_responses")
    assert_tables_equal(upsert(run, tables=others), emulator.state.dataset, others)
    assert run.activated("channels") and run.activated("canned_responses")


def test_a_server_that_ignores_page_but_served_its_total_is_whole(start_emulator, tmp_path):
    # 28 canned responses in pages of 20 asked, every request answered with all 28 (total 28), `limit` 40.
    emulator = start_emulator(
        10, 100, account=ACCOUNT, shape={"whole": [], "ignore_page": ["canned_responses"]}
    )
    emulator.state.dataset.account.canned_responses.fixed_limit = 40
    streams = ("canned_responses",)

    run = run_tap(emulator_config(emulator), tmp_path, streams=streams)

    assert_exact_sync(run, emulator.state.dataset, streams)
    assert emulator.state.stats["requests:canned_responses"] == 1
    assert run.activated("canned_responses")


def _assert_others_exact(run: TapRun, emulator, failed: set[str]) -> None:
    """Every stream but `failed` exact, activated where it reads whole, bookmarked in the last STATE."""
    others = tuple(stream for stream in EVERY_STREAM if stream not in failed)
    assert_tables_equal(upsert(run, tables=others), emulator.state.dataset, others)
    for stream in others:
        if stream in BOOKMARKED:
            assert run.bookmark(stream), stream
    for stream in failed:
        assert not any(m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream for m in run.messages)
        assert not run.bookmark(stream), stream


@pytest.mark.parametrize(
    ("kind", "fault", "failed", "words"),
    [
        (
            "call_logs",
            "403",
            {"call_logs"},
            ["403 Forbidden", "/calls/whatsapp/logs", "permission", "--exclude call_logs"],
        ),
        (
            "campaigns",
            "404",
            {"campaigns", "campaign_recipients"},
            ["404 Not Found", "/campaigns", "--exclude campaigns"],
        ),
        ("canned_responses", "500", {"canned_responses"}, ["500", "/canned-responses", "max_retry_seconds"]),
    ],
)
def test_a_failing_endpoint_ends_its_own_stream_only(start_emulator, tmp_path, kind, fault, failed, words):
    emulator = start_emulator(30, 600, account=ACCOUNT)
    emulator.state.faults = Faults(endpoints={kind: fault})

    run = run_tap(emulator_config(emulator, max_retry_seconds=5), tmp_path, streams=None)

    # Before: the first request of the failing endpoint ended the run (exit 1); every stream after
    # it in sync order was never read.
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    _assert_others_exact(run, emulator, failed)
    errors = _errors(run)
    assert len(errors) == len(failed), errors
    (own,) = [line for line in errors if line.startswith(f"{kind} not read whole")]
    assert all(word in own for word in words), own
    assert "Its bookmark and table version stay where they were" in own
    if failed - {kind}:
        assert any(
            line.startswith("campaign_recipients not read: it is read under each of the campaigns")
            for line in errors
        )
    summary = [line for line in tap_log(run.stderr) if line.startswith("Sync FAILED")]
    named = re.search(rf"Sync FAILED: {len(failed)} of 9 streams failed \(([\w, ]+)\)", summary[0])
    assert len(summary) == 1 and named and set(named.group(1).split(", ")) == failed, summary


def test_the_next_run_after_an_endpoint_recovers_completes_it_from_its_state(start_emulator, tmp_path):
    emulator = start_emulator(30, 600, account=ACCOUNT)
    emulator.state.faults = Faults(endpoints={"call_logs": "403"})
    first = run_tap(emulator_config(emulator), tmp_path, streams=None)
    assert first.returncode == 1
    emulator.state.faults = Faults()
    before = emulator.state.stats.copy()

    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=None)

    assert second.returncode == 0, second.stderr[-2000:]
    assert_tables_equal(upsert(first, second, tables=EVERY_STREAM), emulator.state.dataset, EVERY_STREAM)
    # Call logs had no bookmark: read whole, then ACTIVATE_VERSION as on a first run.
    assert len(second.records["call_logs"]) == len(emulator.state.dataset.campaign_data.call_logs)
    assert second.activated("call_logs") and second.bookmark("call_logs")
    # The others continue from their bookmarks: no message is read again but the lookback's.
    messages_again = emulator.state.stats["requests:messages"] - before["requests:messages"]
    assert messages_again < before["requests:messages"] / 2


def test_rejected_credentials_still_end_the_run_at_once(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    run = run_tap(emulator_config(emulator, auth_token="not-the-token"), tmp_path, streams=None)  # noqa: S106

    assert run.returncode == 1
    assert emulator.state.stats["requests"] == 1
    errors = _errors(run)
    assert len(errors) == 1 and "401" in errors[0] and "check auth_id and auth_token" in errors[0]


def test_a_404_from_every_endpoint_is_a_wrong_api_url(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    api_url = emulator.api_url.replace("/api/v1/messaging", "/api/v2/messaging")

    run = run_tap(emulator_config(emulator, api_url=api_url), tmp_path, streams=None)

    assert run.returncode == 1
    assert emulator.state.stats["requests"] == 2  # the first list, then one other to tell
    errors = _errors(run)
    assert len(errors) == 1, errors
    assert re.search(r"Vobiz answered 404 for /[\w/-]+ and /[\w/-]+ \(", errors[0]), errors[0]
    assert errors[0].endswith("check api_url")
    assert "Traceback" not in run.stderr
