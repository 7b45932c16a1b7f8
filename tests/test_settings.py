"""Settings: invalid ones stop the tap before any request, with a clear message."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.tap_runner import TAP, emulator_config, run_tap

README = Path(__file__).resolve().parent.parent / "README.md"


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


def test_fractional_numbers_in_a_config_file_are_accepted(start_emulator, tmp_path):
    # The SDK reads 1.5 in a JSON config as a Decimal; it is a number like any other.
    emulator = start_emulator(5, 100)
    config = emulator_config(
        emulator, lookback_hours=1.5, max_requests_per_second=500.5, progress_interval_seconds=0.5
    )

    run = run_tap(config, tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(run.records["messages"]) == 100


def test_readme_settings_table_is_the_taps_own():
    about = subprocess.run(
        [str(TAP), "--about", "--format=markdown"], capture_output=True, text=True, check=True
    ).stdout
    table = re.compile(r"^\| Setting \|.*?(?=\n\n)", re.S | re.M)
    assert table.search(README.read_text()).group(0) == table.search(about).group(0)  # type: ignore[union-attr]
