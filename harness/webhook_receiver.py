"""A webhook receiver (`vobiz-webhooks serve`) in a subprocess, for the demo, the tests and the benchmarks.

    with running_receiver(capture_dir, secret="...") as receiver:
        receiver.url       # http://127.0.0.1:<free port>, to subscribe
        receiver.capture   # the capture's LOCATION, to point the tap's `webhook_capture` at
        receiver.stop()    # SIGTERM, wait; returns what it logged (its shutdown summary last)
        subscribe(emulator.api_url, receiver)   # the emulator now sends its activity there

The real console script's code runs (`python -m tap_vobiz.webhooks_cli`), on a port it picks
itself: its first stdout line says which.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import typing as t
from contextlib import contextmanager
from pathlib import Path

import requests

from vobiz_emulator.server import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN

STARTUP_SECONDS = 30


class RunningReceiver:
    """A started receiver process: where it listens, where it captures, how to stop it."""

    def __init__(
        self, process: subprocess.Popen[str], url: str, capture: str, secret: str, log: t.IO[str]
    ) -> None:
        self.process = process
        self.url = url
        self.capture = capture
        self.secret = secret
        self._log = log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> str:
        """Send `sig` (SIGTERM: a graceful stop; SIGKILL: kill -9), wait, and return its log."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout)
        return self.log()

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()


def start_receiver(
    capture: str | Path, *, secret: str, options: t.Sequence[str] = (), host: str = "127.0.0.1"
) -> RunningReceiver:
    """Start `vobiz-webhooks serve` on a free port of `host`, capturing to `capture`; the secret
    goes in its environment (`VOBIZ_WEBHOOK_SECRET`)."""
    log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed with the receiver
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_vobiz.webhooks_cli",
            "serve",
            "--host",
            host,
            "--port",
            "0",
            "--capture",
            str(capture),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "VOBIZ_WEBHOOK_SECRET": secret},
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first.startswith("listening on "):
        process.kill()
        process.wait()
        log.seek(0)
        raise RuntimeError(f"the receiver did not start: {first.strip()} {log.read().strip()}")
    url = first.removeprefix("listening on ").split(",")[0]
    return RunningReceiver(process, url, str(capture), secret, log)


@contextmanager
def running_receiver(
    capture: str | Path, *, secret: str, options: t.Sequence[str] = ()
) -> t.Iterator[RunningReceiver]:
    """`start_receiver`, stopped (SIGTERM) on the way out if it still runs."""
    receiver = start_receiver(capture, secret=secret, options=options)
    try:
        yield receiver
    finally:
        if receiver.process.poll() is None:
            receiver.stop()
        receiver._log.close()


def subscribe(api_url: str, receiver: RunningReceiver) -> dict:
    """Subscribe the receiver to an emulator's webhooks (its published test credentials); the
    subscription as the API answered it."""
    response = requests.post(
        api_url.rstrip("/") + "/webhooks",
        json={"url": receiver.url, "secret": receiver.secret},
        headers={"X-Auth-ID": DEFAULT_AUTH_ID, "X-Auth-Token": DEFAULT_AUTH_TOKEN},
        timeout=30,
    )
    response.raise_for_status()
    return dict(response.json())
