"""A mistake in a `--config`, `--state` or `--catalog` file: one ERROR line naming it, exit 1, no request."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.tap_runner import TAP, emulator_config, run_tap, tap_log

VERSION_LINE = ("INFO", "tap-vobiz v0.1.0, Meltano SDK v")


def _log_lines(stderr: str) -> list[tuple[str, str]]:
    """(level, message) of each log line: `time | LEVEL | logger | message`."""
    lines = []
    for line in stderr.splitlines():
        _time, level, _logger, message = (part.strip() for part in line.split("|", 3))
        lines.append((level, message))
    return lines


def _run(tmp_path, emulator, *, config: str | None = None, **files: str) -> subprocess.CompletedProcess:
    """The CLI with a good config file (or `config`'s text) and the other files' texts as given."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(emulator_config(emulator)) if config is None else config)
    command = [str(TAP), "--config", str(config_path)]
    for option, text in files.items():
        path = tmp_path / f"{option}.json"
        path.write_text(text)
        command += [f"--{option}", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _assert_one_error_before_any_request(completed, emulator, lines: list[tuple[str, str]]) -> None:
    assert completed.returncode == 1
    assert completed.stdout == ""
    logged = _log_lines(completed.stderr)
    assert len(logged) == len(lines), completed.stderr
    for (level, message), (expected_level, expected) in zip(logged, lines, strict=True):
        assert level == expected_level
        assert message.startswith(expected) if expected_level == "INFO" else message == expected
    assert emulator.state.stats["requests"] == 0


def test_a_config_file_that_does_not_exist(start_emulator, tmp_path):
    emulator = start_emulator(3, 30)
    missing = tmp_path / "missing.json"

    completed = subprocess.run(
        [str(TAP), "--config", str(missing)], capture_output=True, text=True, timeout=60, check=False
    )

    _assert_one_error_before_any_request(
        completed, emulator, [("ERROR", f"Cannot use --config {missing}: no such file")]
    )


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("auth_id: x\n", "not valid JSON: Expecting value at line 1 column 1"),
        ('{"auth_id": "x", "auth_token": ', "not valid JSON: it ends too early (truncated?)"),
        ('["auth_id", "x"]', "holds a JSON array, not an object"),
        ("", "the file is empty"),
    ],
)
def test_a_config_file_that_is_not_a_json_object(start_emulator, tmp_path, text, what):
    emulator = start_emulator(3, 30)

    completed = _run(tmp_path, emulator, config=text)

    _assert_one_error_before_any_request(
        completed, emulator, [("ERROR", f"Cannot use --config {tmp_path / 'config.json'}: {what}")]
    )


@pytest.mark.parametrize(
    ("option", "text", "what"),
    [
        ("state", "not json\n", "not valid JSON: Expecting value at line 1 column 1"),
        (
            "state",
            '{"bookmarks": {"messages": {"replication_key": "created_at", ',
            "not valid JSON: it ends too early (truncated?)",
        ),
        (
            "state",
            '{"bookmarks": {"messages": {"replication_key": "created_at", "replication_key_value": "2026-10-',
            "not valid JSON: it ends too early (truncated?)",
        ),
        ("state", "", "the file is empty"),
        ("state", "[]", "holds a JSON array, not an object"),
        ("state", '"bookmarks"', "holds a JSON string, not an object"),
        ("state", '{"bookmarks": []}', '"bookmarks" is a JSON array, not an object'),
        (
            "state",
            '{"bookmarks": {"messages": "2026-10-01T00:00:00Z"}}',
            'the bookmark of "messages" is a JSON string, not an object',
        ),
        (
            "catalog",
            "{'streams': []}",
            "not valid JSON: Expecting property name enclosed in double quotes or '}' at line 1 column 2",
        ),
        ("catalog", '{"streams": [', "not valid JSON: it ends too early (truncated?)"),
        ("catalog", "[]", "holds a JSON array, not an object"),
        ("catalog", '{"bookmarks": {}}', 'no "streams", not a list: is it a Singer catalog?'),
        (
            "catalog",
            '{"streams": {"messages": {}}}',
            'a JSON object as "streams", not a list: is it a Singer catalog?',
        ),
        ("catalog", '{"streams": [{"stream": "messages"}]}', 'stream entry 1 has no "tap_stream_id"'),
        (
            "catalog",
            '{"streams": [{"tap_stream_id": "whatsapp_messages", "schema": {}, "metadata": []}]}',
            'names a stream tap-vobiz does not have: "whatsapp_messages" (call_events, call_logs, '
            "campaign_recipients, campaigns, canned_responses, channels, contacts, conversations, "
            "message_statuses, messages, templates, webhook_events)",
        ),
        (
            "catalog",
            '{"streams": [{"tap_stream_id": "messages", "schema": []}]}',
            'the entry of "messages" needs a "schema" object and a "metadata" list',
        ),
    ],
)
def test_a_state_or_catalog_file_that_cannot_be_used(start_emulator, tmp_path, option, text, what):
    emulator = start_emulator(3, 30)

    completed = _run(tmp_path, emulator, **{option: text})

    _assert_one_error_before_any_request(
        completed,
        emulator,
        [VERSION_LINE, ("ERROR", f"Cannot use --{option} {tmp_path / option}.json: {what}")],
    )


def test_a_state_file_that_does_not_exist(start_emulator, tmp_path):
    emulator = start_emulator(3, 30)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(emulator_config(emulator)))
    missing = tmp_path / "state.json"

    completed = subprocess.run(
        [str(TAP), "--config", str(config_path), "--state", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    _assert_one_error_before_any_request(
        completed, emulator, [VERSION_LINE, ("ERROR", f"Cannot use --state {missing}: no such file")]
    )


def test_an_unreadable_bookmark_says_it_costs_a_full_read_and_how_to_fix_the_state(start_emulator, tmp_path):
    emulator = start_emulator(10, 300)
    state = {
        "bookmarks": {"messages": {"replication_key": "created_at", "replication_key_value": "yesterday"}}
    }

    run = run_tap(emulator_config(emulator), tmp_path, state=state)

    assert run.returncode == 0
    assert tap_log(run.stderr, "WARNING") == [
        "Ignoring the messages bookmark in the state ('yesterday' is not an RFC 3339 timestamp): this run "
        "reads all messages, a full read as on a first run; to avoid that, set a valid bookmark "
        "(`meltano state set`) or clear the state (`meltano state clear`)"
    ]
    assert len(run.records["messages"]) == 300
