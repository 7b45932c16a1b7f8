"""Reruns given the previous run's last STATE: what is new arrives, old history is not re-read."""

from __future__ import annotations

from tests.tap_runner import emulator_config, run_tap


def _bookmarks(state: dict) -> dict[str, str]:
    partitions = state["bookmarks"]["messages"]["partitions"]
    return {p["context"]["conversation_id"]: p["replication_key_value"] for p in partitions}


def test_rerun_with_state_emits_new_activity_and_nothing_is_missing(start_emulator, tmp_path):
    emulator = start_emulator(120, 6000, days=10)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    assert first.returncode == 0

    activity = dataset.add_activity(hours=6, new_conversations=8, new_messages=400)
    second = run_tap(config, tmp_path, state=first.last_state)

    assert second.returncode == 0, second.stderr[-2000:]
    emitted_twice = set(second.ids("messages"))
    assert set(activity["new_messages"]) <= emitted_twice
    assert set(activity["new_conversations"]) <= set(second.ids("conversations"))
    everything = {m["id"] for c in dataset.conversations for m in c.messages}
    assert set(first.ids("messages")) | emitted_twice == everything
    # Only messages at or after their conversation's bookmark are read again.
    bookmarks = _bookmarks(first.last_state)
    for record in second.records["messages"]:
        assert record["created_at"] >= bookmarks.get(record["conversation_id"], "")
    # Conversations that expired since the first run arrive with their new status.
    latest = {r["id"]: r["status"] for r in second.records["conversations"]}
    for conversation_id in activity["closed_conversations"]:
        assert latest[conversation_id] == "closed"


def test_rerun_reads_only_conversations_whose_window_reaches_the_bookmark(start_emulator, tmp_path):
    emulator = start_emulator(200, 4000, days=30)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    bookmark = first.last_state["bookmarks"]["conversations"]["replication_key_value"]
    emulator.state.stats.clear()

    second = run_tap(config, tmp_path, state=first.last_state)

    reachable = {c.id for c in dataset.conversations if c.record["expires_at"] >= bookmark}
    assert second.returncode == 0
    assert set(second.ids("conversations")) == reachable
    assert emulator.state.stats["requests:messages"] == len(reachable) < len(dataset.conversations)


def test_rerun_stops_paging_a_long_history_once_past_the_bookmark(start_emulator, tmp_path):
    emulator = start_emulator(1, 2500, days=0.5)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    assert first.returncode == 0
    assert emulator.state.stats["requests:messages"] == 25
    activity = dataset.add_activity(hours=1, new_messages=30)
    emulator.state.stats.clear()

    second = run_tap(config, tmp_path, state=first.last_state)

    assert second.returncode == 0
    assert emulator.state.stats["requests:messages"] == 1
    assert set(activity["new_messages"]) <= set(second.ids("messages"))


def test_messages_sharing_the_bookmark_second_are_not_lost(start_emulator, tmp_path):
    emulator = start_emulator(1, 300, days=0.5)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    bookmark = _bookmarks(first.last_state)[dataset.conversations[0].id]
    # A message created later in the same second as the bookmark.
    conversation = dataset.conversations[0]
    late = dict(conversation.messages[-1], id="ffffffff-0000-4000-8000-000000000000", created_at=bookmark)
    conversation.add(late)

    second = run_tap(config, tmp_path, state=first.last_state)

    assert late["id"] in second.ids("messages")
