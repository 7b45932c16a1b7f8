"""What the tap must emit for an emulator's data: the exact records, field by field."""

from __future__ import annotations

import json

from tap_vobiz.streams import ConversationsStream, MessagesStream
from tests.tap_runner import TapRun
from vobiz_emulator.dataset import Dataset

CONVERSATION_FIELDS = set(ConversationsStream.schema["properties"])
MESSAGE_FIELDS = set(MessagesStream.schema["properties"])


def expected_message(message: dict, conversation_id: str) -> dict:
    """A served message as the tap should emit it."""
    expected = {key: message.get(key) for key in MESSAGE_FIELDS}
    expected["conversation_id"] = message.get("conversation_id") or conversation_id
    try:
        parsed = json.loads(message["content"])
    except ValueError:
        parsed = None
    expected["content_json"] = parsed if isinstance(parsed, dict) else None
    return expected


def assert_no_duplicates(run: TapRun, stream: str) -> None:
    ids = run.ids(stream)
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate {stream} ids"


def assert_exact_sync(run: TapRun, dataset: Dataset) -> None:
    """Every conversation and message of the dataset, once, exactly as served."""
    assert run.returncode == 0, run.stderr[-3000:]
    assert_no_duplicates(run, "conversations")
    assert_no_duplicates(run, "messages")

    served_conversations = {c.id: c.record for c in dataset.conversations}
    emitted_conversations = {r["id"]: r for r in run.records["conversations"]}
    assert emitted_conversations.keys() == served_conversations.keys()
    for conversation_id, record in emitted_conversations.items():
        assert set(record) <= CONVERSATION_FIELDS
        served = served_conversations[conversation_id]
        assert {k: record.get(k) for k in CONVERSATION_FIELDS} == {
            k: served.get(k) for k in CONVERSATION_FIELDS
        }

    served_messages = {m["id"]: expected_message(m, c.id) for c in dataset.conversations for m in c.messages}
    emitted_messages = {r["id"]: r for r in run.records["messages"]}
    assert emitted_messages.keys() == served_messages.keys()
    for message_id, record in emitted_messages.items():
        assert set(record) <= MESSAGE_FIELDS
        assert {k: record.get(k) for k in MESSAGE_FIELDS} == served_messages[message_id]
