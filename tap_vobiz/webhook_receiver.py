"""The webhook receiver: an ASGI application that captures verified Vobiz deliveries durably.

Every `POST` (to any path but `/healthz`) is one delivery. It is answered `200` only once its
raw body and headers are on stable storage (`webhook_capture`): Vobiz has no redelivery API,
so an event acknowledged and then lost would be lost for good. A delivery is refused, counted
and never written when its signature is missing or wrong (`401`), its body is over the limit
(`413`), or its body is not a UTF-8 JSON object, or one nested too deeply to decode (`400`); a
capture that cannot be written answers `503`, which Vobiz may retry. The counts are logged when
the receiver stops, and served by `GET /healthz`.

It is served by uvicorn (`serve`), which on SIGTERM or SIGINT stops accepting, lets the
requests in flight finish (for at most `SHUTDOWN_SECONDS`: a client that never sends the rest
of its body must not keep the receiver up), and only then runs the application's shutdown: the
capture writer writes what is queued, closes its segment, and the counts are logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import signal
import socket
import sys
import typing as t
from collections import Counter

from tap_vobiz.connection import redact
from tap_vobiz.webhook_capture import CaptureWriter, delivery_line, location_secrets
from tap_vobiz.webhook_signature import verify

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Vobiz gives a delivery "a short per-delivery timeout": one still unanswered after this has been
# given up by its sender, which delivers it again. Its line, if queued, is written all the same.
SHUTDOWN_SECONDS = 5
logger = logging.getLogger("vobiz_webhooks")

# Why a delivery was refused: its answer, and the words of the shutdown line.
REJECTIONS = {
    "signature_missing": (401, "no X-Webhook-Signature"),
    "signature_invalid": (401, "a wrong signature"),
    "too_large": (413, "a body over the limit"),
    "not_json": (400, "a body not UTF-8 JSON"),
    "not_object": (400, "a JSON body not an object"),
    "too_deep": (400, "a JSON body nested too deeply to decode"),
    "not_post": (405, "a method other than POST"),
    "capture_failed": (503, "the capture could not be written"),
}

Scope = t.MutableMapping[str, t.Any]
Message = t.MutableMapping[str, t.Any]
Receive = t.Callable[[], t.Awaitable[Message]]
Send = t.Callable[[Message], t.Awaitable[None]]


class TooLarge(Exception):
    """A body past the receiver's limit."""


class WebhookReceiver:
    """The ASGI application: verify, capture, then acknowledge."""

    def __init__(
        self,
        capture: CaptureWriter,
        secrets: tuple[str, ...],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if not secrets or not all(secrets):
            raise ValueError("the receiver needs a non-empty secret")
        self.capture = capture
        self._secrets = secrets
        self.max_body_bytes = max_body_bytes
        self.captured = 0
        self.rejected: Counter[str] = Counter()
        self._last_capture_error = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._request(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Requests in flight have been answered by now (uvicorn waits for them).
                await asyncio.get_running_loop().run_in_executor(None, self.capture.close)
                logger.info(self.summary())
                await send({"type": "lifespan.shutdown.complete"})
                return

    def summary(self) -> str:
        """One line: what was captured and what was refused, by reason."""
        refused = ", ".join(
            f"{count} {REJECTIONS[reason][1]}" for reason, count in sorted(self.rejected.items())
        )
        return (
            f"stopped: {self.captured} deliveries captured in {self.capture.flushes} flushes "
            f"(slowest {self.capture.slowest_flush * 1000:.0f} ms; writer {self.capture.writer_id}); "
            f"refused: {refused or 'none'}"
        )

    async def _request(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/healthz" and scope["method"] in {"GET", "HEAD"}:
            health = {"status": "ok", "captured": self.captured, "rejected": dict(self.rejected)}
            await _answer(send, 200, health)
            return
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        reason, body = await self._refusal(scope["method"], headers, receive)
        if reason is None:
            line = delivery_line(headers, body, dt.datetime.now(dt.timezone.utc))
            try:
                await asyncio.wrap_future(self.capture.submit(line))
            except Exception as error:
                self._capture_failed(error)
                reason = "capture_failed"
        if reason is not None:
            self.rejected[reason] += 1
            status, words = REJECTIONS[reason]
            await _answer(send, status, {"error": words})
            return
        self.captured += 1
        await _answer(send, 200, {"status": "captured"})

    async def _refusal(
        self, method: str, headers: list[tuple[str, str]], receive: Receive
    ) -> tuple[str | None, bytes]:
        """Why a request is refused (a key of REJECTIONS; None for a verified delivery), and its body."""
        if method != "POST":
            return "not_post", b""
        named = dict(headers)  # names come lower-cased from the server
        declared = named.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return "too_large", b""
        try:
            body = await self._body(receive)
        except TooLarge:
            return "too_large", b""
        signature = named.get("x-webhook-signature")
        if not signature:
            return "signature_missing", body
        if not verify(self._secrets, body, signature):
            return "signature_invalid", body
        try:
            payload = json.loads(body.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is one
            return "not_json", body
        except RecursionError:  # legal JSON, but a decoder's stack ends near 1,000 levels
            return "too_deep", body
        return (None if isinstance(payload, dict) else "not_object"), body

    async def _body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _capture_failed(self, error: Exception) -> None:
        text = redact(f"{type(error).__name__}: {error}", location_secrets(self.capture.location))
        if text != self._last_capture_error:
            self._last_capture_error = text
            logger.error("cannot write the capture (answering 503 until it can): %s", text)


async def _answer(send: Send, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), listening (port 0: a free port, read back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says TCP; without it every answer (head and body: two writes) waits ~40 ms for a
    # delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: WebhookReceiver, sock: socket.socket) -> None:
    """Serve `app` on `sock` with uvicorn until SIGTERM or SIGINT, then shut down gracefully."""
    import uvicorn

    config = uvicorn.Config(
        app,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=False,
        http="httptools",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )
    # uvicorn re-raises the signal it stopped on once it is done: a SIGTERM then ends the
    # process with status 0, after the graceful shutdown, rather than as killed by it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.Server(config).run(sockets=[sock])
