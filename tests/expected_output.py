"""What the tap must emit for an emulator's data: the exact records, field by field, table by table."""

from __future__ import annotations

import json

from harness.pipeline_stack import UpsertingTarget
from tap_vobiz.tap import STREAM_TYPES
from tests.tap_runner import TapRun
from vobiz_emulator.dataset import Dataset

FIELDS = {stream.name: set(stream.schema["properties"]) for stream in STREAM_TYPES}
CONVERSATION_FIELDS = FIELDS["conversations"]
MESSAGE_FIELDS = FIELDS["messages"]
CONVERSATION_TABLES = ("conversations", "messages")
ACCOUNT_TABLES = ("channels", "templates", "contacts", "canned_responses")


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


def as_emitted(table: str, row: dict) -> dict:
    """A served row of a page-numbered list as the tap should emit it (every field, absent ones null)."""
    return {key: row.get(key) for key in FIELDS[table]}


def assert_no_duplicates(run: TapRun, stream: str) -> None:
    ids = run.ids(stream)
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate {stream} ids"


def expected_tables(
    dataset: Dataset, tables: tuple[str, ...] = CONVERSATION_TABLES
) -> dict[str, dict[str, dict]]:
    """The dataset as a target that upserts by `id` should hold it: table -> id -> fields."""
    everything: dict[str, dict[str, dict]] = {
        "conversations": {
            c.id: {k: c.record.get(k) for k in CONVERSATION_FIELDS} for c in dataset.conversations
        },
        "messages": {m["id"]: expected_message(m, c.id) for c in dataset.conversations for m in c.messages},
    }
    for table, rows in {**dataset.account.export(), **dataset.campaign_data.export()}.items():
        everything[table] = {row["id"]: as_emitted(table, row) for row in rows}
    # A recipient the API lists without its campaign_id carries the campaign it was read under.
    for campaign_id, recipients in dataset.campaign_data.recipients.items():
        for row in recipients:
            everything["campaign_recipients"][row["id"]]["campaign_id"] = campaign_id
    return {table: everything[table] for table in tables}


def upsert(*runs: TapRun, tables: tuple[str, ...] = CONVERSATION_TABLES) -> dict[str, dict[str, dict]]:
    """What a target that upserts by `id` (and applies ACTIVATE_VERSION) holds after loading these runs."""
    target = UpsertingTarget(tables)
    for run in runs:
        for message in run.messages:
            target.load(message)
    return target.tables


def assert_tables_equal(
    tables: dict[str, dict[str, dict]], dataset: Dataset, names: tuple[str, ...] = CONVERSATION_TABLES
) -> None:
    """Every row of every table equals the dataset's, field by field; nothing missing or extra."""
    for table, expected in expected_tables(dataset, names).items():
        rows = tables[table]
        missing, extra = expected.keys() - rows.keys(), rows.keys() - expected.keys()
        assert not missing and not extra, f"{table}: {len(missing)} missing, {len(extra)} unexpected"
        for row_id, row in rows.items():
            assert set(row) <= FIELDS[table]
            projected = {k: row.get(k) for k in FIELDS[table]}
            assert projected == expected[row_id], f"{table} {row_id} differs"


def assert_exact_sync(run: TapRun, dataset: Dataset, tables: tuple[str, ...] = CONVERSATION_TABLES) -> None:
    """Every row of these tables of the dataset, once, exactly as served."""
    assert run.returncode == 0, run.stderr[-3000:]
    for table in tables:
        assert_no_duplicates(run, table)
    assert_tables_equal(upsert(run, tables=tables), dataset, tables)
