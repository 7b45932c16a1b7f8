"""End to end: the installed `tap-vobiz` command against the emulator, compared exactly."""

from __future__ import annotations

import gzip
import json
import re
import subprocess

import pytest

from tests.expected_output import assert_exact_sync
from tests.tap_runner import TAP, emulator_config, run_tap, tap_log


def test_full_sync_of_1000_conversations_and_50000_messages_is_exact(start_emulator, tmp_path):
    emulator = start_emulator(1000, 50_000, seed=11)
    dataset = emulator.state.dataset
    missing = sum(1 for c in dataset.conversations for m in c.messages if "conversation_id" not in m)
    multi_page = sum(1 for c in dataset.conversations if len(c.messages) > 100)
    assert missing > 0 and multi_page > 0  # the traps are really in the data

    run = run_tap(emulator_config(emulator), tmp_path)

    assert_exact_sync(run, dataset)
    assert len(run.records["messages"]) == 50_000
    assert all(r["conversation_id"] for r in run.records["messages"])


def test_every_message_carries_the_conversation_it_was_read_under(start_emulator, tmp_path):
    emulator = start_emulator(30, 2000)
    run = run_tap(emulator_config(emulator), tmp_path)
    owner = {m["id"]: c.id for c in emulator.state.dataset.conversations for m in c.messages}
    assert run.returncode == 0
    assert {r["id"]: r["conversation_id"] for r in run.records["messages"]} == owner


def test_bearer_token_and_small_pages_give_the_same_exact_output(start_emulator, tmp_path):
    emulator = start_emulator(15, 900)
    config = emulator_config(emulator, page_size=7, bearer_token=emulator.state.bearer_token)
    del config["auth_id"], config["auth_token"]

    run = run_tap(config, tmp_path)

    assert_exact_sync(run, emulator.state.dataset)
    assert emulator.state.stats["requests:messages"] > 900 / 7


def test_paginated_conversation_listing_is_followed_to_the_end(start_emulator, tmp_path):
    emulator = start_emulator(25, 300, conversations_page_size=4)
    run = run_tap(emulator_config(emulator), tmp_path)
    assert_exact_sync(run, emulator.state.dataset)
    # 7 pages, read by each stream: conversations, and messages to find what to read.
    assert emulator.state.stats["requests:conversations"] == 2 * 7


def test_content_is_kept_byte_for_byte_and_parsed_beside_it(start_emulator, tmp_path):
    emulator = start_emulator(40, 4000)
    run = run_tap(emulator_config(emulator), tmp_path)
    served = {m["id"]: m["content"] for c in emulator.state.dataset.conversations for m in c.messages}
    unparseable = [r for r in run.records["messages"] if r["content_json"] is None]
    assert unparseable, "the dataset should include content that is not a JSON object"
    for record in run.records["messages"]:
        assert record["content"] == served[record["id"]]
        assert record["content"].encode() == served[record["id"]].encode()


def test_start_date_limits_a_first_run(start_emulator, tmp_path):
    emulator = start_emulator(60, 3000)
    start = "2026-10-20T00:00:00Z"
    run = run_tap(emulator_config(emulator, start_date=start), tmp_path)
    dataset = emulator.state.dataset

    assert run.returncode == 0
    expected_messages = {
        m["id"] for c in dataset.conversations for m in c.messages if m["created_at"] >= start
    }
    expected_conversations = {c.id for c in dataset.conversations if c.record["expires_at"] >= start}
    assert set(run.ids("messages")) == expected_messages
    assert set(run.ids("conversations")) == expected_conversations
    assert 0 < len(expected_messages) < dataset.message_count()


def test_fields_the_schema_does_not_know_are_dropped_and_named_once(start_emulator, tmp_path):
    emulator = start_emulator(5, 200)
    for conversation in emulator.state.dataset.conversations:
        for message in conversation.messages:
            message["reaction"] = {"emoji": "👍"}
    run = run_tap(emulator_config(emulator), tmp_path)
    assert run.returncode == 0
    assert all("reaction" not in record for record in run.records["messages"])
    assert run.stderr.count("Dropping messages fields not in the schema: reaction") == 1


def test_fields_deselected_in_the_catalog_are_not_emitted(start_emulator, tmp_path):
    emulator = start_emulator(5, 200)
    config = emulator_config(emulator)
    (tmp_path / "config.json").write_text(json.dumps(config))
    discover = [str(TAP), "--config", str(tmp_path / "config.json"), "--discover"]
    catalog = json.loads(subprocess.run(discover, capture_output=True, text=True, check=True).stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if entry["stream"] == "messages" and metadata["breadcrumb"] == ["properties", "content"]:
                metadata["metadata"]["selected"] = False
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    run = run_tap(config, tmp_path, args=("--catalog", str(tmp_path / "catalog.json")))

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records["messages"]) == 200
    assert all("content" not in r and "content_json" in r for r in run.records["messages"])
    assert all("status" in r for r in run.records["messages"] + run.records["conversations"])


def test_batch_messages_carry_exactly_the_records_of_a_record_sync(start_emulator, tmp_path):
    # The `batch` capability meltano.yml declares: records go to gzipped JSONL files instead.
    emulator = start_emulator(25, 900)
    batches = tmp_path / "batches"
    batches.mkdir()
    config = emulator_config(
        emulator,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": batches.as_uri(), "prefix": "vobiz-"},
        },
    )

    run = run_tap(config, tmp_path)
    plain = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0, run.stderr
    assert [m for m in run.messages if m["type"] == "RECORD"] == []
    loaded: dict[str, list[dict]] = {}
    for message in (m for m in run.messages if m["type"] == "BATCH"):
        for url in message["manifest"]:
            with gzip.open(url.removeprefix("file://"), "rt") as batch_file:
                loaded.setdefault(message["stream"], []).extend(json.loads(line) for line in batch_file)
    assert loaded == dict(plain.records)
    assert run.last_state == plain.last_state


def test_stream_maps_filter_remove_and_add_fields(start_emulator, tmp_path):
    # The `stream-maps` capability, through the tap's own record path (tap_vobiz/output.py).
    emulator = start_emulator(25, 900)
    config = emulator_config(
        emulator,
        stream_maps={
            "conversations": {"__filter__": "category == 'marketing'"},
            "messages": {"content": None, "content_start": "content[:12] if content else None"},
        },
    )

    run = run_tap(config, tmp_path)
    plain = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0, run.stderr
    kept = [c for c in plain.records["conversations"] if c["category"] == "marketing"]
    assert 0 < len(kept) < len(plain.records["conversations"])
    assert run.records["conversations"] == kept
    expected = [
        {**{k: v for k, v in m.items() if k != "content"}, "content_start": (m["content"] or "")[:12] or None}
        for m in plain.records["messages"]
    ]
    assert run.records["messages"] == expected
    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "messages")
    assert "content" not in schema["properties"] and "content_start" in schema["properties"]


def test_schema_flattening_keeps_free_form_objects_whole_as_json_text(start_emulator, tmp_path):
    # `schema-flattening`: every key of every record is a column of its SCHEMA.
    emulator = start_emulator(10, 300)
    config = emulator_config(emulator, flattening_enabled=True, flattening_max_depth=1)

    run = run_tap(config, tmp_path)
    plain = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0, run.stderr
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    assert schemas["messages"]["properties"]["content_json"]["type"] == ["string", "null"]
    for stream in ("conversations", "messages"):
        assert len(run.records[stream]) == len(plain.records[stream])
        for flat, nested in zip(run.records[stream], plain.records[stream], strict=True):
            assert flat.keys() <= schemas[stream]["properties"].keys()
            for key, value in nested.items():
                if isinstance(value, dict):
                    assert json.loads(flat[key]) == value
                else:
                    assert flat[key] == value


def test_a_stream_map_expression_that_fails_is_one_clear_line(start_emulator, tmp_path):
    emulator = start_emulator(3, 30)
    config = emulator_config(emulator, stream_maps={"messages": {"size": "len(content)"}})

    run = run_tap(config, tmp_path)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "stream_maps: Failed to evaluate simpleeval expressions len(content)" in run.stderr


def test_a_stream_map_expression_that_raises_on_a_record_is_one_line_naming_it(start_emulator, tmp_path):
    emulator = start_emulator(3, 60)
    config = emulator_config(emulator, stream_maps={"messages": {"body": "content_json['body']"}})

    run = run_tap(config, tmp_path)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, errors
    assert re.search(
        r"Invalid stream_maps: stream messages, property body: "
        r"\"content_json\['body'\]\" raised KeyError: 'body'",
        errors[0],
    )


def test_a_stream_map_naming_a_stream_not_selected_is_not_applied_and_said_once(start_emulator, tmp_path):
    # A catalog (or Meltano's `select`) that leaves call_logs and campaigns out, and maps naming them:
    # the SDK registered them with the schema of their selected properties (none) and failed on their
    # key properties, with a traceback, before any request.
    emulator = start_emulator(5, 80)
    maps = {"call_logs": {"__filter__": "true"}, "campaigns": {"name_upper": "name.upper()"}}

    run = run_tap(emulator_config(emulator, stream_maps=maps), tmp_path)

    assert "Traceback" not in run.stderr
    assert_exact_sync(run, emulator.state.dataset)
    assert set(run.records) == {"conversations", "messages"}
    said = [line for line in tap_log(run.stderr) if "stream_maps" in line]
    assert said == ["stream_maps: the maps for call_logs, campaigns are not applied: not selected"]


@pytest.mark.parametrize(
    ("stream_maps", "error"),
    [
        (
            {"conversations": {"__key_properties__": ["nope"]}},
            "Invalid stream_maps: Invalid key properties for 'conversations': [nope]. "
            "Property 'nope' was not detected in schema.",
        ),
        (
            {"conversations": {"__filter__": "category =="}},
            "Invalid stream_maps: Failed to parse expression category ==. (SyntaxError: invalid syntax",
        ),
        (
            {"__else__": "everything"},
            "'everything' is not valid under any of the given schemas in config['stream_maps']['__else__']",
        ),
    ],
)
def test_an_invalid_stream_map_is_one_error_line_before_any_request(
    start_emulator, tmp_path, stream_maps, error
):
    emulator = start_emulator(3, 30)

    run = run_tap(emulator_config(emulator, stream_maps=stream_maps), tmp_path)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = tap_log(run.stderr, "ERROR")
    assert errors[0].startswith(error), errors
    assert errors[1:] in ([], ["Config validation failed"]), errors
    assert run.messages == []
    assert emulator.state.stats["requests"] == 0
