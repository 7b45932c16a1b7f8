"""The webhook receiver (`vobiz-webhooks serve`), run as its console script: durable before acknowledged."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.webhook_receiver import RunningReceiver, running_receiver, start_receiver
from tap_vobiz.webhook_capture import CaptureWriter
from tap_vobiz.webhook_receiver import WebhookReceiver, listening_socket
from tap_vobiz.webhook_signature import sign

SECRET = "receiver-test-secret"  # noqa: S105 - a test secret


def envelope(event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": "message.status",
            "account_id": "MA_EMULATOR",
            "occurred_at": "2026-11-01T00:00:00Z",
            "payload": {"statuses": [{"id": "wamid.X", "status": "read", "timestamp": "1793491200"}]},
        }
    ).encode()


def post(url: str, body: bytes, headers: dict[str, str] | None = None, path: str = "/hooks") -> int:
    if headers is None:
        headers = {"X-Webhook-Signature": sign(SECRET, body), "X-Webhook-Event": "message.status"}
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json", **headers})
        return connection.getresponse().status
    finally:
        connection.close()


def captured(location: Path) -> list[dict]:
    """Every complete line of the capture (a torn end of a segment is not one)."""
    lines = []
    for segment in sorted(location.glob("segments/*/*.jsonl")):
        data = segment.read_bytes()
        for text in data[: data.rfind(b"\n") + 1].splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue  # torn: only at the end of a segment whose writer was killed mid-write
    return lines


def captured_ids(location: Path) -> list[str]:
    return [json.loads(record["body"])["event_id"] for record in captured(location)]


def burst(receiver: RunningReceiver, acknowledged: list[str], stop: threading.Event) -> None:
    """Signed deliveries from 8 keep-alive connections until `stop` (or the receiver goes)."""
    parts = urlsplit(receiver.url)

    def deliver() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while not stop.is_set():
            event_id = str(uuid.uuid4())
            body = envelope(event_id)
            try:
                connection.request("POST", "/", body, {"X-Webhook-Signature": sign(SECRET, body)})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                return
            if status == 200:
                acknowledged.append(event_id)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_verified_delivery_is_captured_with_its_raw_body_and_headers(tmp_path: Path) -> None:
    body = b'{"event_id": "e-1",  "event_type": "message.inbound", "payload": {"t": "Gr\xc3\xbc\xc3\x9fe"}}'
    signature = sign(SECRET, body).upper()
    with running_receiver(tmp_path, secret=SECRET) as receiver:
        assert post(receiver.url, body, {"X-Webhook-Signature": signature, "X-Webhook-Event": "x"}) == 200
        records = captured(tmp_path)  # before the receiver stops: durable when acknowledged
    [record] = records
    assert record["body"].encode() == body
    assert record["headers"]["x-webhook-signature"] == signature
    assert record["headers"]["x-webhook-event"] == "x"
    assert record["headers"]["content-type"] == "application/json"
    assert record["v"] == 1 and record["received_at"].endswith("Z")


def test_refused_deliveries_are_answered_counted_and_never_captured(tmp_path: Path) -> None:
    good = envelope("good")
    deep = b'{"event_id": "deep", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    refusals = [
        (b"{}", {}, 401),
        (good, {"X-Webhook-Signature": sign("another-secret", good)}, 401),
        (good + b" ", {"X-Webhook-Signature": sign(SECRET, good)}, 401),
        (b"x" * 12001, {"X-Webhook-Signature": sign(SECRET, b"x" * 12001)}, 413),
        (deep, {"X-Webhook-Signature": sign(SECRET, deep)}, 400),
        (b"not json", {"X-Webhook-Signature": sign(SECRET, b"not json")}, 400),
        (b'{"a": "\xff"}', {"X-Webhook-Signature": sign(SECRET, b'{"a": "\xff"}')}, 400),
        (b"[1, 2]", {"X-Webhook-Signature": sign(SECRET, b"[1, 2]")}, 400),
    ]
    with running_receiver(tmp_path, secret=SECRET, options=["--max-body-bytes", "12000"]) as receiver:
        for body, headers, status in refusals:
            assert post(receiver.url, body, headers) == status
        assert post(receiver.url, good) == 200
        log = receiver.stop()
    assert captured_ids(tmp_path) == ["good"]
    assert (
        "stopped: 1 deliveries captured in 1 flushes" in log
        and "refused: 2 a body not UTF-8 JSON, 1 a JSON body not an object, 2 a wrong signature, "
        "1 no X-Webhook-Signature, 1 a JSON body nested too deeply to decode, 1 a body over the limit"
        in log
    ), log
    assert SECRET not in log


def stopped_during_a_burst(receiver: RunningReceiver, sig: int, after: int) -> tuple[list[str], str]:
    """Send `sig` to the receiver once `after` deliveries of a burst were acknowledged; the
    acknowledged event ids and the receiver's log."""
    acknowledged: list[str] = []
    stop = threading.Event()
    sender = threading.Thread(target=burst, args=(receiver, acknowledged, stop))
    sender.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < after and time.monotonic() < deadline:
        time.sleep(0.01)
    log = receiver.stop(sig)
    stop.set()
    sender.join()
    assert len(acknowledged) >= after
    return acknowledged, log


def test_every_acknowledged_delivery_survives_a_kill_9_during_a_burst(tmp_path: Path) -> None:
    acknowledged, _ = stopped_during_a_burst(start_receiver(tmp_path, secret=SECRET), signal.SIGKILL, 1500)
    ids = captured_ids(tmp_path)
    assert set(acknowledged) <= set(ids)
    assert len(ids) == len(set(ids))


def test_sigterm_answers_the_requests_in_flight_and_loses_none(tmp_path: Path) -> None:
    receiver = start_receiver(tmp_path, secret=SECRET)
    acknowledged, log = stopped_during_a_burst(receiver, signal.SIGTERM, 500)
    assert receiver.process.returncode == 0
    ids = captured_ids(tmp_path)
    assert sorted(acknowledged) == sorted(ids)
    assert f"stopped: {len(ids)} deliveries captured" in log, log


def test_a_client_that_never_sends_the_rest_of_its_body_keeps_a_sigterm_waiting_5_s_at_most(
    tmp_path: Path,
) -> None:
    with running_receiver(tmp_path, secret=SECRET) as receiver:
        parts = urlsplit(receiver.url)
        stalled = socket.create_connection((parts.hostname, parts.port))
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert post(receiver.url, envelope("before")) == 200
        time.sleep(0.2)  # the stalled request has reached the application
        started = time.monotonic()
        log = receiver.stop(timeout=20)
        waited = time.monotonic() - started
        stalled.close()
    assert receiver.process.returncode == 0
    assert 4.5 < waited < 10, waited
    assert "stopped: 1 deliveries captured in 1 flushes" in log, log
    assert captured_ids(tmp_path) == ["before"]


def test_two_receivers_share_one_location_in_segments_of_their_own(tmp_path: Path) -> None:
    with (
        running_receiver(tmp_path, secret=SECRET) as first,
        running_receiver(tmp_path, secret=SECRET) as second,
    ):
        for number in range(20):
            assert post((first, second)[number % 2].url, envelope(f"e{number}")) == 200
    writers = sorted(path.name for path in (tmp_path / "segments").iterdir())
    assert len(writers) == 2 and writers[0] != writers[1]
    assert sorted(captured_ids(tmp_path)) == sorted(f"e{number}" for number in range(20))


def test_healthz_answers_with_the_counts(tmp_path: Path) -> None:
    with running_receiver(tmp_path, secret=SECRET) as receiver:
        assert post(receiver.url, envelope("e1")) == 200
        assert post(receiver.url, b"{}", {"X-Webhook-Signature": "00"}) == 401
        parts = urlsplit(receiver.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("GET", "/vobiz")
        assert connection.getresponse().status == 405
        connection.close()
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {
            "status": "ok",
            "captured": 1,
            "rejected": {"signature_invalid": 1, "not_post": 1},
        }


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        pytest.param([], {}, "no webhook secret: set VOBIZ_WEBHOOK_SECRET", id="no secret"),
        pytest.param(["--secret-file", "/nonexistent/secret"], {}, "cannot read --secret-file", id="no file"),
        # argparse took `--secret` for `--secret-file` and printed the secret as a missing file's name.
        pytest.param(["--secret", "sekrit-in-argv"], {}, "never a command-line argument", id="--secret"),
        pytest.param(["--secret=sekrit-in-argv"], {}, "never a command-line argument", id="--secret="),
    ],
)
def test_a_receiver_without_a_secret_is_one_line(
    tmp_path: Path, arguments: list[str], environment: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tap_vobiz.webhooks_cli",
            "serve",
            "--port",
            "0",
            "--capture",
            str(tmp_path),
            *arguments,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **environment},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert "sekrit" not in result.stderr + result.stdout
    assert not list(tmp_path.iterdir())  # refused before the capture is opened


def test_without_the_webhooks_extra_serve_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None; from tap_vobiz.webhooks_cli import main; "
        f"sys.exit(main(['serve', '--capture', {str(tmp_path)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "VOBIZ_WEBHOOK_SECRET": "x"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "vobiz-webhooks: the receiver needs the webhooks extra: pip install 'tap-vobiz[webhooks]'\n"
    )


def test_answers_go_out_without_waiting_for_a_delayed_ack() -> None:
    """The receiver's accepted connections have TCP_NODELAY (asyncio sets it only on a socket that
    says TCP): else each answer's body waits ~40 ms behind its head (measured: 44 ms a request)."""

    async def accepted_nodelay() -> int:
        sock = listening_socket("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(
                writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_receivers_capture_to_an_object_store_one_object_per_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two receivers behind one (imagined) load balancer, writing to a local S3 server (moto's)."""
    import boto3
    import fsspec
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "FSSPEC_S3_ENDPOINT_URL": endpoint,  # fsspec's configuration of s3fs, from the environment
        }.items():
            monkeypatch.setenv(name, value)
        # A bucket of its own: moto's servers in one process share their buckets.
        bucket = f"captures-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        location = f"s3://{bucket}/vobiz"
        with (
            running_receiver(location, secret=SECRET) as first,
            running_receiver(location, secret=SECRET) as second,
        ):
            for number in range(10):
                assert post((first, second)[number % 2].url, envelope(f"e{number}")) == 200
            # Durable when acknowledged: every object is there before the receivers stop.
            fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
            objects = sorted(fs.find(f"{bucket}/vobiz/segments"))
        writers = {path.split("/")[-2] for path in objects}
        assert len(writers) == 2 and len(objects) == 10  # sequential posts: one flush, one object each
        assert {path.rsplit("/", 1)[1] for path in objects} == {f"{seq:012d}.jsonl" for seq in range(1, 6)}
        ids = sorted(json.loads(json.loads(fs.cat_file(path))["body"])["event_id"] for path in objects)
        assert ids == sorted(f"e{number}" for number in range(10))
    finally:
        server.stop()


def test_a_capture_that_cannot_be_written_answers_503_and_captures_nothing(tmp_path: Path) -> None:
    """A delivery is acknowledged only once written: a failing disk or store is a 503 (Vobiz may retry)."""

    class BrokenStore:
        def write(self, data: bytes) -> None:
            raise OSError(5, "Input/output error")

        def close(self) -> None:
            pass

    capture = CaptureWriter(str(tmp_path), writer_id="w1")
    capture.store = BrokenStore()
    app = WebhookReceiver(capture, (SECRET,))
    body = envelope("e1")

    async def deliver() -> list[dict]:
        sent: list[dict] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [(b"x-webhook-signature", sign(SECRET, body).encode())],
        }

        async def receive() -> dict:
            return messages.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    start, answer = asyncio.run(deliver())
    capture.close()
    assert start["status"] == 503 and json.loads(answer["body"]) == {
        "error": "the capture could not be written"
    }
    assert app.captured == 0 and app.rejected == {"capture_failed": 1}


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        pytest.param(
            "s3://bucket/prefix", "--capture s3://bucket/prefix: Install s3fs to access S3", id="no driver"
        ),
        pytest.param(
            "nosuch://x", "cannot open --capture nosuch://x: Protocol not known: nosuch", id="no protocol"
        ),
        pytest.param(
            "ftp://writer:ftp-password-1@127.0.0.1:1/capture",  # nothing listens on port 1
            "cannot open --capture ftp://writer:[redacted]@127.0.0.1:1/capture: "
            "[Errno 111] Connection refused",
            id="a password in the URL",
        ),
    ],
)
def test_a_capture_location_that_cannot_be_opened_is_one_line(capture: str, expected: str) -> None:
    code = (
        "import sys; sys.modules['s3fs'] = None; from tap_vobiz.webhooks_cli import main; "
        f"sys.exit(main(['serve', '--port', '0', '--capture', {capture!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "VOBIZ_WEBHOOK_SECRET": "x"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"vobiz-webhooks: {expected}\n"
