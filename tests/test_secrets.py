"""Secrets never leave the tap: not in logs (at debug level too), errors, --about, STATE or records."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.tap_runner import TAP, emulator_config, run_tap, tap_log
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


def _credential_run(emulator, tmp_path, name: str, value: str, source: str):
    """A run whose credential `name` is `value`, from the config file or a TAP_VOBIZ_* variable."""
    config = emulator_config(emulator)
    if name == "bearer_token":
        config = {"api_url": config["api_url"]}
    if source == "file":
        return run_tap({**config, name: value}, tmp_path)
    variable = {f"TAP_VOBIZ_{name.upper()}": value}
    return run_tap(config, tmp_path, args=("--config", "ENV"), env=variable)


@pytest.mark.parametrize(
    ("name", "source", "padded"),
    [
        ("auth_token", "file", "{}\n"),
        ("auth_token", "env", "{}\n"),
        ("bearer_token", "file", " {}\r\n"),
        ("bearer_token", "env", "\t{} \n"),
        ("auth_id", "file", "{}\n"),
    ],
)
def test_a_credential_read_with_a_trailing_newline_is_trimmed_and_never_shown(
    start_emulator, tmp_path, name, source, padded
):
    # A secret read from a file, a Kubernetes secret or a `.env` line ends in a newline.
    emulator = start_emulator(3, 30, auth_token=TOKEN, bearer_token=BEARER)
    value = {"auth_token": TOKEN, "bearer_token": BEARER, "auth_id": emulator.state.auth_id}[name]

    run = _credential_run(emulator, tmp_path, name, padded.format(value), source)

    # Before: exit 1, `ValueError: Invalid header value b'tok-...-SECRET\n'` and its traceback.
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert len(run.records["messages"]) == 30
    _assert_secret_free(run.stderr + json.dumps(run.messages))


@pytest.mark.parametrize("source", ["file", "env"])
def test_a_credential_with_a_line_break_inside_is_one_line_that_never_shows_it(
    start_emulator, tmp_path, source
):
    emulator = start_emulator(2, 20, auth_token=TOKEN)
    broken = TOKEN[:12] + "\n" + TOKEN[12:]

    run = _credential_run(emulator, tmp_path, "auth_token", broken, source)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    about_the_token = [line for line in tap_log(run.stderr, "ERROR") if "auth_token" in line]
    assert about_the_token == [
        "auth_token holds a line break, which an HTTP header cannot carry: check how it was copied "
        "(the value given is not shown: it is a secret)"
    ], run.stderr[-2000:]
    assert TOKEN[:12] not in run.stderr and TOKEN[12:] not in run.stderr
    _assert_secret_free(run.stderr)
    assert emulator.state.stats["requests"] == 0
