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


def expected_tables(dataset: Dataset) -> dict[str, dict[str, dict]]:
    """The dataset as a target that upserts by `id` should hold it: table -> id -> fields."""
    return {
        "conversations": {
            c.id: {k: c.record.get(k) for k in CONVERSATION_FIELDS} for c in dataset.conversations
        },
        "messages": {m["id"]: expected_message(m, c.id) for c in dataset.conversations for m in c.messages},
    }


def upsert(*runs: TapRun) -> dict[str, dict[str, dict]]:
    """What a target that upserts by `id` holds after loading these runs' output in order."""
    tables: dict[str, dict[str, dict]] = {"conversations": {}, "messages": {}}
    for run in runs:
        for stream, records in run.records.items():
            for record in records:
                tables[stream][record["id"]] = record
    return tables


def assert_tables_equal(tables: dict[str, dict[str, dict]], dataset: Dataset) -> None:
    """Every row of every table equals the dataset's, field by field; nothing missing or extra."""
    fields = {"conversations": CONVERSATION_FIELDS, "messages": MESSAGE_FIELDS}
    for table, expected in expected_tables(dataset).items():
        rows = tables[table]
        missing, extra = expected.keys() - rows.keys(), rows.keys() - expected.keys()
        assert not missing and not extra, f"{table}: {len(missing)} missing, {len(extra)} unexpected"
        for row_id, row in rows.items():
            assert set(row) <= fields[table]
            projected = {k: row.get(k) for k in fields[table]}
            assert projected == expected[row_id], f"{table} {row_id} differs"


def assert_exact_sync(run: TapRun, dataset: Dataset) -> None:
    """Every conversation and message of the dataset, once, exactly as served."""
    assert run.returncode == 0, run.stderr[-3000:]
    assert_no_duplicates(run, "conversations")
    assert_no_duplicates(run, "messages")
    assert_tables_equal(upsert(run), dataset)
