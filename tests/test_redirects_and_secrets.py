"""The credentials stay with `api_url`: redirects elsewhere are refused; what the API quotes is redacted."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tap_vobiz.connection import UnsafeRedirectError, api_session
from tap_vobiz.errors import StreamError
from tests.expected_output import assert_exact_sync
from tests.tap_runner import emulator_config, run_tap, tap_log
from vobiz_emulator.server import Faults

TOKEN = "tok-5e4d3c2b1a09-REDIRECTED"  # noqa: S105
BEARER = "eyJhbGciOiJIUzI1NiJ9.QUOTED-BEARER.sig"
DEBUG = {"TAP_VOBIZ_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}


class RecordingServer(ThreadingHTTPServer):
    """Another host: records the headers of every request it gets, answers an empty page."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _RecordingHandler)
        self.received: list[dict[str, str]] = []


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.received.append(dict(self.headers))
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def other_host(start_emulator) -> Iterator[tuple[object, RecordingServer]]:
    """An emulator that can redirect to `http://127.0.0.2:<its port>`, and the server listening there."""
    emulator = start_emulator(3, 60, auth_token=TOKEN)
    server = RecordingServer(("127.0.0.2", emulator.server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield emulator, server
    server.shutdown()
    server.server_close()


def _stream_errors(stderr: str, about: str) -> dict[str, str]:
    """The ERROR lines that mention `about`, by the stream that logged them: one each at most.

    The stream that met the failure logs it; a stream read under it may repeat it (its own
    line, worded by the tap): never the same stream twice, nor anything else.
    """
    errors: dict[str, str] = {}
    for line in stderr.splitlines():
        parts = [part.strip() for part in line.split("|", 3)]
        if len(parts) == 4 and parts[1] == "ERROR" and about in parts[3]:
            assert parts[2] in {"tap-vobiz.conversations", "tap-vobiz.messages"}, line
            assert parts[2] not in errors, line
            errors[parts[2]] = parts[3]
    return errors


def _assert_secret_free(text: str) -> None:
    for secret in (TOKEN, BEARER):
        assert secret not in text
        assert secret[4:16] not in text  # no partial echo either


def test_a_redirect_to_another_host_is_refused_and_the_token_never_sent(other_host, tmp_path):
    emulator, server = other_host
    emulator.state.faults = Faults(script=["redirect-other"])

    run = run_tap(emulator_config(emulator), tmp_path)

    assert server.received == []  # not even a request without the token
    assert run.returncode == 1
    port = emulator.server.server_address[1]
    error = _stream_errors(run.stderr, "was redirected")["tap-vobiz.conversations"]
    assert re.search(
        rf"GET /api/v1/messaging/conversations\S* was redirected \(307\) to http://127\.0\.0\.2:{port}, "
        rf"away from api_url's http://127\.0\.0\.1:{port}; not followed, so the credentials were not "
        "sent there",
        error,
    ), error
    assert "check api_url (the API redirected elsewhere)" in error
    assert "Traceback" not in run.stderr and "Retrying" not in run.stderr
    _assert_secret_free(run.stderr)
    assert emulator.state.stats["requests"] == 1


@pytest.mark.parametrize(
    ("api_url", "target"),
    [
        ("https://api.vobiz.ai/api/v1/messaging", "https://elsewhere.example/api/v1/messaging/contacts"),
        ("https://api.vobiz.ai/api/v1/messaging", "https://api.vobiz.ai:8443/api/v1/messaging/contacts"),
        ("https://api.vobiz.ai/api/v1/messaging", "http://api.vobiz.ai/api/v1/messaging/contacts"),
        ("http://127.0.0.1:8080/api/v1/messaging", "https://127.0.0.1:8080/api/v1/messaging/contacts"),
    ],
)
def test_the_session_refuses_a_redirect_to_another_host_port_or_scheme(api_url, target):
    session = api_session(api_url, 1)
    response = requests.Response()
    response.status_code = 307
    response.request = requests.Request("GET", f"{api_url}/contacts?page=2").prepare()
    redirected = requests.Request("GET", target, headers={"X-Auth-Token": TOKEN}).prepare()

    # Called by `requests` for each redirect, before it is sent.
    with pytest.raises(UnsafeRedirectError) as refused:
        session.rebuild_auth(redirected, response)

    assert isinstance(refused.value, StreamError)  # an endpoint's failure: it ends the stream, unretried
    assert "GET /api/v1/messaging/contacts?page=2 was redirected (307)" in str(refused.value)
    # The same origin, spelled with its default port, is followed.
    same = api_url.replace("api.vobiz.ai", "api.vobiz.ai:443") + "/contacts"
    session.rebuild_auth(requests.Request("GET", same).prepare(), response)


def test_a_redirect_within_the_api_host_is_followed_to_the_same_output(start_emulator, tmp_path):
    emulator = start_emulator(5, 300)
    emulator.state.faults = Faults(
        script=["redirect-same", "ok", "ok", "redirect-same", "ok", "redirect-same"]
    )

    run = run_tap(emulator_config(emulator), tmp_path)

    assert_exact_sync(run, emulator.state.dataset)
    assert emulator.state.stats["faults:redirect-same"] == 3
    assert "Traceback" not in run.stderr and "redirect" not in run.stderr


def test_a_redirect_loop_is_one_line(start_emulator, tmp_path):
    emulator = start_emulator(3, 60)
    emulator.state.faults = Faults(script=["redirect-loop"])

    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 1
    error = _stream_errors(run.stderr, "redirect")["tap-vobiz.conversations"]
    assert re.search(
        r"GET /api/v1/messaging/conversations\S* was redirected 30 times without an answer "
        r"\(a redirect loop\)",
        error,
    ), error
    assert "Traceback" not in run.stderr and "TooManyRedirects" not in run.stderr
    assert emulator.state.stats["faults:redirect-loop"] == 31  # the request and 30 redirects, no retry


@pytest.mark.parametrize(
    ("auth", "script", "settings", "returncode", "level", "lines"),
    [
        ("token", ["error-quotes-token:401"], {}, 1, "ERROR", 1),
        ("bearer", ["error-quotes-token:401"], {}, 1, "ERROR", 1),
        ("token", ["error-quotes-token:503"] * 2, {}, 0, "WARNING", 2),
        ("token", ["error-quotes-token:503"] * 30, {"max_retry_seconds": 2}, 1, "ERROR", 1),
    ],
    ids=["401", "401-bearer", "503-retried", "503-retries-exhausted"],
)
def test_an_error_quoting_the_token_is_logged_with_the_token_redacted(
    start_emulator, tmp_path, auth, script, settings, returncode, level, lines
):
    emulator = start_emulator(3, 60, auth_token=TOKEN, bearer_token=BEARER)
    emulator.state.faults = Faults(script=script)
    config = emulator_config(emulator, **settings)
    if auth == "bearer":
        config = {"api_url": config["api_url"], "bearer_token": BEARER}

    run = run_tap(config, tmp_path, env=DEBUG)

    assert run.returncode == returncode, run.stderr[-3000:]
    # The API's words are kept, with the token (or the bearer token) redacted.
    quoting = [line for line in tap_log(run.stderr, level) if "invalid token" in line]
    assert len(quoting) >= lines, run.stderr[-3000:]
    assert all("[redacted]" in line for line in quoting)
    _assert_secret_free(run.stderr + json.dumps(run.messages))
