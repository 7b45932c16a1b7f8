"""Reruns from the last STATE: every change reaches the target, at the cost of what can have changed."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tap_vobiz.decoding import parse_timestamp
from tap_vobiz.incremental import SyncWindow
from tests.expected_output import assert_exact_sync, assert_no_duplicates, assert_tables_equal, upsert
from tests.tap_runner import emulator_config, records_out, run_tap, run_tap_until
from vobiz_emulator.dataset import message_key, rfc3339
from vobiz_emulator.server import Faults

DEFAULT_LOOKBACK = dt.timedelta(hours=72)


def bookmark(state: dict, stream: str) -> dt.datetime:
    value = parse_timestamp(state["bookmarks"][stream]["replication_key_value"])
    assert value is not None
    return value


def window_end(conversation) -> dt.datetime:
    return parse_timestamp(conversation.record["expires_at"])  # type: ignore[return-value]


def expected_pages(messages: list[dict], horizon: dt.datetime, page_size: int) -> int:
    """Message pages read newest first until one reaches back past the horizon."""
    newest_first = sorted(messages, key=message_key, reverse=True)
    pages = [newest_first[i : i + page_size] for i in range(0, len(newest_first), page_size)] or [[]]
    for number, page in enumerate(pages, start=1):
        if any(parse_timestamp(m["created_at"]) < horizon for m in page):  # type: ignore[operator]
            return number
    return len(pages)


# 1. One bookmark per stream


def test_state_is_one_bookmark_per_stream_whatever_the_number_of_conversations(start_emulator, tmp_path):
    # Same number of messages, sixty times the conversations.
    small = run_tap(emulator_config(start_emulator(10, 12000, seed=1, days=2)), tmp_path)
    large_emulator = start_emulator(600, 12000, seed=2, days=60)
    large = run_tap(emulator_config(large_emulator), tmp_path)

    assert_exact_sync(large, large_emulator.state.dataset)
    assert len(large.states) == len(small.states) <= 4
    for state in small.states + large.states:
        assert len(json.dumps(state)) < 600
        assert "partitions" not in json.dumps(state)
    assert set(large.last_state["bookmarks"]) == {"conversations", "messages"}
    entry = large.last_state["bookmarks"]["messages"]
    assert {key: value for key, value in entry.items() if key != "resume"} == {
        "replication_key": "created_at",
        "replication_key_value": max(r["created_at"] for r in large.records["messages"]),
    }
    assert not any(entry["resume"].values())  # no position kept: every key null (a merge clears it too)
    assert "assumed to be unsorted" not in large.stderr


def test_per_conversation_state_of_earlier_versions_becomes_one_bookmark(start_emulator, tmp_path):
    emulator = start_emulator(30, 900, days=10)
    dataset = emulator.state.dataset
    first, second = dataset.conversations[-1], dataset.conversations[-2]
    legacy = {
        "bookmarks": {
            "messages": {
                "partitions": [
                    {
                        "context": {"conversation_id": first.id},
                        "replication_key": "created_at",
                        "replication_key_value": first.messages[-1]["created_at"],
                    },
                    {
                        "context": {"conversation_id": second.id},
                        "replication_key": "created_at",
                        "replication_key_value": second.messages[-1]["created_at"],
                    },
                ]
            }
        }
    }
    oldest = min(
        parse_timestamp(p["replication_key_value"]) for p in legacy["bookmarks"]["messages"]["partitions"]
    )

    run = run_tap(emulator_config(emulator, lookback_hours=0), tmp_path, state=legacy)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "partitions" not in json.dumps(run.last_state)
    expected = {
        m["id"]
        for c in dataset.conversations
        for m in c.messages
        if parse_timestamp(m["created_at"]) >= oldest
    }
    assert set(run.ids("messages")) == expected


# 2 and 4. The lookback window and current conversations: the target ends up exact


def test_rerun_brings_new_messages_status_changes_and_closed_conversations_to_the_target(
    start_emulator, tmp_path
):
    emulator = start_emulator(200, 8000, days=30)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    assert_exact_sync(first, dataset)

    activity = dataset.add_activity(hours=12, new_conversations=8, new_messages=400, status_changes=150)
    assert activity["status_changes"] and activity["closed_conversations"]
    second = run_tap(config, tmp_path, state=first.last_state)

    assert second.returncode == 0, second.stderr[-2000:]
    assert_no_duplicates(second, "messages")
    emitted = {r["id"]: r for r in second.records["messages"]}
    assert set(activity["new_messages"]) <= emitted.keys()
    assert set(activity["status_changes"]) <= emitted.keys()
    conversations = {r["id"]: r for r in second.records["conversations"]}
    assert set(activity["new_conversations"]) <= conversations.keys()
    for conversation_id in activity["closed_conversations"]:
        assert conversations[conversation_id]["status"] == "closed"
    assert_tables_equal(upsert(first, second), dataset)


def test_lookback_hours_bounds_which_status_changes_a_rerun_sees(start_emulator, tmp_path):
    emulator = start_emulator(60, 6000, days=12)
    dataset = emulator.state.dataset
    first = run_tap(emulator_config(emulator), tmp_path)
    marker = bookmark(first.last_state, "messages")
    # One outbound message 50 hours before the bookmark, one 100 hours before.
    by_age = sorted(
        (m for c in dataset.conversations for m in c.messages if m["direction"] == "outbound"),
        key=lambda m: abs((marker - parse_timestamp(m["created_at"])).total_seconds() - 50 * 3600),
    )
    recent = by_age[0]
    old = min(
        (m for c in dataset.conversations for m in c.messages if m["direction"] == "outbound"),
        key=lambda m: abs((marker - parse_timestamp(m["created_at"])).total_seconds() - 100 * 3600),
    )
    recent["status"] = old["status"] = "failed"

    default = run_tap(emulator_config(emulator), tmp_path, state=first.last_state)
    week = run_tap(emulator_config(emulator, lookback_hours=168), tmp_path, state=first.last_state)

    assert recent["id"] in default.ids("messages")
    assert old["id"] not in default.ids("messages")
    assert {r["id"]: r["status"] for r in week.records["messages"]}[old["id"]] == "failed"
    assert len(week.ids("messages")) > len(default.ids("messages"))


# 3. Read only what can have changed


@pytest.mark.parametrize("page_size", [100, 7])
def test_rerun_requests_only_conversations_whose_window_reaches_the_horizon(
    start_emulator, tmp_path, page_size
):
    emulator = start_emulator(300, 9000, days=60)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, page_size=page_size)
    first = run_tap(config, tmp_path)
    dataset.add_activity(hours=6, new_conversations=5, new_messages=200, status_changes=50)
    emulator.state.requests.clear()

    second = run_tap(config, tmp_path, state=first.last_state)

    assert second.returncode == 0, second.stderr[-2000:]
    horizon = bookmark(first.last_state, "messages") - DEFAULT_LOOKBACK
    active = {c.id: c for c in dataset.conversations if window_end(c) >= horizon}
    requested = emulator.state.messages_requested()
    assert set(requested) == set(active)
    assert len(active) < len(dataset.conversations) / 5
    for conversation_id, conversation in active.items():
        assert requested[conversation_id] == expected_pages(conversation.messages, horizon, page_size)
    listing_requests = [p for p in emulator.state.requests if p.split("?")[0].endswith("/conversations")]
    assert len(listing_requests) == 2  # once per stream
    conversation_horizon = bookmark(first.last_state, "conversations") - DEFAULT_LOOKBACK
    assert set(second.ids("conversations")) == {
        c.id for c in dataset.conversations if window_end(c) >= conversation_horizon
    }


# 5. Nothing lost at the edges


def test_messages_sharing_the_bookmark_second_are_not_lost(start_emulator, tmp_path):
    emulator = start_emulator(3, 300, days=0.5)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, lookback_hours=0)
    first = run_tap(config, tmp_path)
    value = first.last_state["bookmarks"]["messages"]["replication_key_value"]
    newest = next(c for c in dataset.conversations for m in c.messages if m["created_at"] == value)
    # Written later in the same second as the newest message the first run saw.
    late = dict(newest.messages[-1], id="00000000-0000-4000-8000-000000000000", created_at=value)
    newest.add(late)

    second = run_tap(config, tmp_path, state=first.last_state)

    assert late["id"] in second.ids("messages")
    assert all(r["created_at"] >= value for r in second.records["messages"])
    assert_tables_equal(upsert(first, second), dataset)


def test_messages_created_while_a_run_is_going_arrive_in_the_next_run(start_emulator, tmp_path):
    emulator = start_emulator(80, 8000, days=3)
    emulator.state.faults = Faults(latency_ms=2)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, lookback_hours=0)
    added: list[dict] = []

    def add_activity(process) -> None:
        with emulator.state.lock:
            added.append(dataset.add_activity(hours=2, new_conversations=3, new_messages=300))

    first = run_tap_until(
        config,
        tmp_path,
        records_out("messages", 3000),
        on_stop=add_activity,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    missed = set(added[0]["new_messages"]) - set(first.ids("messages"))
    assert missed  # some landed in conversations the run had already read
    # The bookmark stops at the API's clock when the run started, not at the newest message seen.
    assert first.last_state["bookmarks"]["messages"]["replication_key_value"] <= added[0]["now"]

    second = run_tap(config, tmp_path, state=first.last_state)

    assert missed <= set(second.ids("messages"))
    assert_tables_equal(upsert(first, second), dataset)


@pytest.mark.parametrize(
    ("incremental", "kill_when"),
    [
        pytest.param(False, lambda messages: len(messages) >= 2, id="full-at-start"),
        pytest.param(False, records_out("conversations", 150), id="full-during-conversations"),
        pytest.param(False, records_out("messages", 1), id="full-first-message"),
        pytest.param(False, records_out("messages", 3000), id="full-mid-messages"),
        pytest.param(False, records_out("messages", 5999), id="full-last-message"),
        pytest.param(True, records_out("messages", 100), id="rerun-mid-messages"),
    ],
)
def test_a_run_killed_at_any_point_loses_nothing_when_rerun_from_its_last_state(
    start_emulator, tmp_path, incremental, kill_when
):
    emulator = start_emulator(200, 6000, days=20)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    before = run_tap(config, tmp_path) if incremental else None
    dataset.add_activity(hours=6, new_conversations=6, new_messages=300, status_changes=100)
    emulator.state.faults = Faults(latency_ms=1)

    killed = run_tap_until(config, tmp_path, kill_when, state=before.last_state if before else None)
    assert killed.returncode == -9
    dataset.add_activity(hours=3, new_conversations=2, new_messages=100, status_changes=40)
    last_state = killed.states[-1] if killed.states else (before.last_state if before else None)
    resumed = run_tap(config, tmp_path, state=last_state)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = [before, killed, resumed] if before else [killed, resumed]
    assert_tables_equal(upsert(*runs), dataset)


def test_state_never_moves_past_records_not_yet_emitted(start_emulator, tmp_path):
    emulator = start_emulator(100, 5000, days=10)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    dataset.add_activity(hours=6, new_conversations=4, new_messages=200)

    second = run_tap(config, tmp_path, state=first.last_state)

    keys = {"conversations": "started_at", "messages": "created_at"}
    newest: dict[str, str] = {}
    for message in second.messages:
        if message["type"] == "RECORD":
            value = message["record"][keys[message["stream"]]]
            newest[message["stream"]] = max(newest.get(message["stream"], ""), value)
        elif message["type"] == "STATE":
            for stream, entry in message["value"]["bookmarks"].items():
                unchanged = (
                    entry.get("replication_key_value")
                    == first.last_state["bookmarks"][stream]["replication_key_value"]
                )
                assert unchanged or entry["replication_key_value"] <= newest[stream]


# 6. start_date, and a full refresh


def test_first_run_starts_at_start_date_and_rerun_continues_from_the_bookmark(start_emulator, tmp_path):
    emulator = start_emulator(150, 6000, days=30)
    dataset = emulator.state.dataset
    start = dataset.now - dt.timedelta(days=10)
    config = emulator_config(emulator, start_date=rfc3339(start))

    first = run_tap(config, tmp_path)

    assert first.returncode == 0, first.stderr[-2000:]
    assert_no_duplicates(first, "messages")
    reaching = {c.id for c in dataset.conversations if window_end(c) >= start}
    assert set(emulator.state.messages_requested()) == reaching
    assert set(first.ids("conversations")) == reaching
    assert set(first.ids("messages")) == {
        m["id"]
        for c in dataset.conversations
        for m in c.messages
        if parse_timestamp(m["created_at"]) >= start
    }
    dataset.add_activity(hours=6, new_messages=100)
    second = run_tap(config, tmp_path, state=first.last_state)
    assert all(parse_timestamp(r["created_at"]) >= start for r in second.records["messages"])


def test_a_run_without_state_is_a_complete_resync(start_emulator, tmp_path):
    emulator = start_emulator(80, 3000, days=20)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    dataset.add_activity(hours=30, new_conversations=5, new_messages=200, status_changes=80)
    assert run_tap(config, tmp_path, state=first.last_state).returncode == 0

    full = run_tap(config, tmp_path)  # what `meltano run --full-refresh` does: no state

    assert_exact_sync(full, dataset)


# The window itself


def _at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, 1, hour, tzinfo=dt.timezone.utc)


def test_window_horizon_is_bookmark_minus_lookback_but_never_before_start_date():
    lookback = dt.timedelta(hours=3)
    assert SyncWindow.start(_at(10), lookback=lookback, start_date=None).horizon == _at(7)
    assert SyncWindow.start(_at(10), lookback=lookback, start_date=_at(8)).horizon == _at(8)
    assert SyncWindow.start(None, lookback=lookback, start_date=_at(8)).horizon == _at(8)
    assert SyncWindow.start(None, lookback=lookback, start_date=None).horizon is None


def test_window_bookmark_is_capped_by_the_api_clock_and_never_moves_back():
    window = SyncWindow.start(_at(10), lookback=dt.timedelta(0), start_date=None)
    assert window.next_bookmark() == _at(10)  # nothing emitted: unchanged
    window.observe(_at(9))
    assert window.next_bookmark() == _at(10)
    window.observe(_at(15))
    assert window.next_bookmark() == _at(15)
    window.api_time_at_start = _at(12)
    assert window.next_bookmark() == _at(12)
