"""Settings: invalid ones stop the tap before any request, with a clear message."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.tap_runner import TAP, emulator_config, run_tap, tap_command, tap_log
from vobiz_emulator.account_data import rfc3339

SETTINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth_id": None, "auth_token": None}, "set auth_id and auth_token, or bearer_token"),
        ({"auth_token": None}, "set auth_id and auth_token, or bearer_token"),
        ({"page_size": 0}, "page_size must be an integer from 1 to 100 (got 0)"),
        ({"page_size": 101}, "page_size must be an integer from 1 to 100 (got 101)"),
        ({"start_date": "last tuesday"}, "start_date is not an RFC 3339 date-time (got 'last tuesday')"),
        ({"api_url": "ftp://example.com"}, "api_url must be an https URL"),
        ({"lookback_hours": -1}, "lookback_hours must be a number of hours from 0 to 8784 (got -1)"),
        ({"lookback_hours": "72"}, "lookback_hours must be a number of hours from 0 to 8784 (got '72')"),
        ({"max_workers": 0}, "max_workers must be an integer from 1 to 64 (got 0)"),
        ({"max_requests_per_second": 0}, "max_requests_per_second must be a positive number (got 0)"),
        (
            {"progress_interval_seconds": -1},
            "progress_interval_seconds must be a number of seconds, 0 or more (got -1)",
        ),
    ],
)
def test_invalid_settings_stop_the_tap_before_any_request(start_emulator, tmp_path, overrides, message):
    emulator = start_emulator(3, 30)
    config = {k: v for k, v in emulator_config(emulator, **overrides).items() if v is not None}

    run = run_tap(config, tmp_path)

    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert run.messages == []
    assert emulator.state.stats["requests"] == 0


@pytest.mark.parametrize(
    ("misspelt", "meant", "exit_code"),
    [("start_data", "start_date", 0), ("lookback_hour", "lookback_hours", 0), ("auth_tokn", "auth_token", 1)],
)
def test_a_misspelt_setting_is_one_warning_naming_the_setting_meant(
    start_emulator, tmp_path, misspelt, meant, exit_code
):
    emulator = start_emulator(3, 30)
    config = emulator_config(emulator)
    config[misspelt] = (
        config.pop(meant, None) or {"start_data": "2026-01-01T00:00:00Z", "lookback_hour": 5}[misspelt]
    )

    run = run_tap(config, tmp_path)

    assert run.returncode == exit_code, run.stderr[-2000:]
    assert tap_log(run.stderr, "WARNING") == [
        f"Ignoring the setting {misspelt}: tap-vobiz has no setting of that name; did you mean {meant}?"
    ], run.stderr[-2000:]


def test_the_sdks_own_settings_and_meltanos_extras_are_not_warned_about(start_emulator, tmp_path):
    emulator = start_emulator(3, 30)
    config = emulator_config(
        emulator,
        stream_maps={"channels": {"display_name": "__NULL__"}},
        flattening_enabled=False,
        faker_config={"locale": "en_US"},
        _select=["messages.*"],
        _comment="anything a tool keeps beside the settings",
    )

    run = run_tap(config, tmp_path, streams=None)

    assert run.returncode == 0, run.stderr[-2000:]
    assert tap_log(run.stderr, "WARNING") == [], run.stderr[-2000:]


@pytest.mark.parametrize("written", ["a date alone", "a time without an offset"])
def test_a_start_date_without_an_offset_is_read_as_utc_and_said_in_one_line(
    start_emulator, tmp_path, written
):
    emulator = start_emulator(20, 600)
    dataset = emulator.state.dataset
    moment = (dataset.now - dt.timedelta(days=10)).astimezone(dt.timezone.utc).replace(microsecond=0)
    if written == "a date alone":
        moment = moment.replace(hour=0, minute=0, second=0)
        start_date, reading = moment.date().isoformat(), "midnight UTC"
    else:
        start_date, reading = moment.replace(tzinfo=None).isoformat(), "UTC"

    run = run_tap(emulator_config(emulator, start_date=start_date), tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in tap_log(run.stderr, "INFO") if line.startswith("start_date")] == [
        f"start_date {start_date} is {written.replace('an offset', 'a UTC offset')}: read as "
        f"{rfc3339(moment)} ({reading})"
    ]
    assert sorted(run.ids("messages")) == sorted(
        m["id"] for c in dataset.conversations for m in c.messages if m["created_at"] >= rfc3339(moment)
    )


@pytest.mark.parametrize(
    ("mistake", "exit_code", "lines", "requests"),
    [
        (
            {},
            0,
            [("INFO", "The config works: Vobiz at {api_url} accepted the credentials (3 channels listed)")],
            1,
        ),
        (
            {"auth_token": "not-the-token"},
            1,
            [
                (
                    "ERROR",
                    "Vobiz refused the credentials (401 Unauthorized for GET "
                    "/api/v1/messaging/channels/whatsapp?page=1&limit=100: missing or invalid credentials): "
                    "check auth_id and auth_token (or bearer_token)",
                )
            ],
            1,
        ),
        (
            {"auth_token": None, "page_size": 0},
            1,
            [
                ("ERROR", "set auth_id and auth_token, or bearer_token"),
                ("ERROR", "page_size must be an integer from 1 to 100 (got 0)"),
            ],
            0,
        ),
    ],
    ids=["works", "wrong token", "invalid settings"],
)
def test_test_checks_the_config_and_the_credentials_with_one_request_and_one_line(
    start_emulator, tmp_path, mistake, exit_code, lines, requests
):
    # Before: --test synced a record of every stream (METRIC lines, "An unhandled error occurred while
    # syncing 'templates'"), a wrong token was a traceback, invalid settings a traceback from click.
    emulator = start_emulator(3, 30)
    config = {k: v for k, v in emulator_config(emulator, **mistake).items() if v is not None}

    run = run_tap(config, tmp_path, args=("--test",), streams=None)

    assert run.returncode == exit_code, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    logged = [
        (level, line.format(api_url=emulator.api_url))
        for level in ("INFO", "ERROR")
        for line in tap_log(run.stderr, level)
        if level != "INFO" or line.startswith("The config works")
    ]
    assert sorted(logged) == sorted((level, line.format(api_url=emulator.api_url)) for level, line in lines)
    assert run.messages == []
    assert emulator.state.stats["requests"] == requests


def test_discover_with_a_config_a_sync_would_refuse_says_why_and_still_prints_the_catalog(
    start_emulator, tmp_path
):
    emulator = start_emulator(3, 30)
    config = {
        k: v for k, v in emulator_config(emulator, auth_token=None, page_size=0).items() if v is not None
    }

    run = subprocess.run(
        tap_command(config, tmp_path, None, ("--discover",), streams=None),
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(json.loads(run.stdout)["streams"]) == 9
    assert [line for line in tap_log(run.stderr, "WARNING") if line.startswith("A sync")] == [
        "A sync would refuse this config: set auth_id and auth_token, or bearer_token",
        "A sync would refuse this config: page_size must be an integer from 1 to 100 (got 0)",
    ]


def test_fractional_numbers_in_a_config_file_are_accepted(start_emulator, tmp_path):
    # The SDK reads 1.5 in a JSON config as a Decimal; it is a number like any other.
    emulator = start_emulator(5, 100)
    config = emulator_config(
        emulator, lookback_hours=1.5, max_requests_per_second=500.5, progress_interval_seconds=0.5
    )

    run = run_tap(config, tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(run.records["messages"]) == 100


def test_the_docs_settings_table_is_the_taps_own():
    about = subprocess.run(
        [str(TAP), "--about", "--format=markdown"], capture_output=True, text=True, check=True
    ).stdout
    table = re.compile(r"^\| Setting \|.*?(?=\n\n)", re.S | re.M)
    assert table.search(SETTINGS_DOC.read_text()).group(0) == table.search(about).group(0)  # type: ignore[union-attr]


def _run_with_env_config(emulator, tmp_path: Path, variables: dict[str, str]) -> subprocess.CompletedProcess:
    """`tap-vobiz --config ENV` with these TAP_VOBIZ_* variables (and the emulator's credentials)."""
    import json
    import os

    from tests.tap_runner import catalog_selecting

    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_selecting(("channels", "conversations", "messages"))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_VOBIZ_")}
    env.update({f"TAP_VOBIZ_{k.upper()}": str(v) for k, v in emulator_config(emulator).items()})
    env.update(variables)
    return subprocess.run(
        [str(TAP), "--config", "ENV", "--catalog", str(catalog)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )


def test_every_kind_of_setting_works_from_the_environment(start_emulator, tmp_path):
    emulator = start_emulator(10, 200)

    completed = _run_with_env_config(
        emulator,
        tmp_path,
        {
            "TAP_VOBIZ_USER_AGENT": "acme-elt/1.0",  # string
            "TAP_VOBIZ_MAX_WORKERS": "2",  # integer
            "TAP_VOBIZ_LOOKBACK_HOURS": "0",  # number
            "TAP_VOBIZ_MAX_REQUESTS_PER_SECOND": "250.5",
            "TAP_VOBIZ_PROGRESS_INTERVAL_SECONDS": "0",
            "TAP_VOBIZ_EMIT_ACTIVATE_VERSION_MESSAGES": "false",  # boolean
            "TAP_VOBIZ_STREAM_MAPS": '{"channels": {"display_name": "__NULL__"}}',  # object
        },
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    messages = [__import__("json").loads(line) for line in completed.stdout.splitlines()]
    channels = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "channels"]
    assert len(channels) == 3 and all("display_name" not in c for c in channels)
    assert not [m for m in messages if m["type"] == "ACTIVATE_VERSION"]
    assert "Progress:" not in completed.stderr


def test_an_empty_variable_reads_as_unset(start_emulator, tmp_path):
    emulator = start_emulator(10, 200)

    completed = _run_with_env_config(
        emulator, tmp_path, {"TAP_VOBIZ_START_DATE": "", "TAP_VOBIZ_PAGE_SIZE": ""}
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    messages = [json.loads(line) for line in completed.stdout.splitlines()]
    assert sum(m["type"] == "RECORD" and m["stream"] == "messages" for m in messages) == 200


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        ({"TAP_VOBIZ_MAX_WORKERS": "eight"}, "TAP_VOBIZ_MAX_WORKERS must be a whole number (got 'eight')"),
        ({"TAP_VOBIZ_LOOKBACK_HOURS": "soon"}, "TAP_VOBIZ_LOOKBACK_HOURS must be a number (got 'soon')"),
        ({"TAP_VOBIZ_LOOKBACK_HOURS": "nan"}, "TAP_VOBIZ_LOOKBACK_HOURS must be a number (got 'nan')"),
        ({"TAP_VOBIZ_EMIT_ACTIVATE_VERSION_MESSAGES": "maybe"}, "must be true or false (got 'maybe')"),
        ({"TAP_VOBIZ_STREAM_MAPS": "{not json"}, "TAP_VOBIZ_STREAM_MAPS must be a JSON object"),
    ],
)
def test_a_variable_that_does_not_convert_is_one_line_before_any_request(
    start_emulator, tmp_path, variables, line
):
    emulator = start_emulator(3, 30)

    completed = _run_with_env_config(emulator, tmp_path, variables)

    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = [text for text in completed.stderr.splitlines() if "ERROR" in text]
    assert any(line in error for error in errors), completed.stderr[-1500:]
    assert emulator.state.stats["requests"] == 0
