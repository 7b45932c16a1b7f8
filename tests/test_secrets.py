"""Secrets never leave the tap: not in logs (at debug level too), errors, --about, STATE or records."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.tap_runner import TAP, emulator_config, run_tap
from vobiz_emulator.server import Faults

TOKEN = "tok-9f8e7d6c5b4a-SECRET"  # noqa: S105
BEARER = "eyJhbGciOiJIUzI1NiJ9.SECRET-BEARER.sig"
DEBUG = {"TAP_VOBIZ_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}


def _assert_secret_free(text: str) -> None:
    for secret in (TOKEN, BEARER):
        assert secret not in text
        assert secret[4:16] not in text  # no partial echo either


@pytest.mark.parametrize("auth", ["token", "bearer"])
def test_a_debug_level_run_with_faults_never_shows_the_credentials(start_emulator, tmp_path, auth):
    emulator = start_emulator(5, 300, auth_token=TOKEN, bearer_token=BEARER)
    emulator.state.faults = Faults(script=["ok", "503", "ok", "429", "ok", "malformed", "ok", "reset"])
    config = emulator_config(emulator)
    if auth == "bearer":
        config = {"api_url": config["api_url"], "bearer_token": BEARER}

    run = run_tap(config, tmp_path, env=DEBUG)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG" in run.stderr
    assert "Retrying" in run.stderr
    _assert_secret_free(run.stderr)
    _assert_secret_free(json.dumps(run.messages))


def test_failures_never_show_the_credentials(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    config = emulator_config(emulator, auth_token=TOKEN, bearer_token=None)
    config.pop("bearer_token")

    run = run_tap(config, tmp_path, env=DEBUG)

    assert run.returncode == 1
    assert "401" in run.stderr
    _assert_secret_free(run.stderr + json.dumps(run.messages))


def test_about_and_discover_never_show_the_credentials(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"auth_id": "MA_X", "auth_token": TOKEN, "bearer_token": BEARER}))
    for args in (["--about"], ["--about", "--format=json"], ["--about", "--format=markdown"], ["--discover"]):
        result = subprocess.run(
            [str(TAP), "--config", str(config_path), *args], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        _assert_secret_free(result.stdout + result.stderr)
