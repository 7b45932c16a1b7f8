"""Running the installed `tap-vobiz` command and reading what it wrote."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.pipeline_stack import select_streams

TAP = Path(sys.executable).with_name("tap-vobiz")
# What the conversation tests select; `streams=None` selects every stream (the tap's default).
CONVERSATION_STREAMS = ("conversations", "messages")


@functools.cache
def discovered_catalog() -> str:
    """`tap-vobiz --discover`, run once."""
    return subprocess.run(
        [str(TAP), "--discover"], capture_output=True, text=True, check=True, env={**os.environ}
    ).stdout


def catalog_selecting(streams: tuple[str, ...]) -> dict:
    """The discovered catalog with only `streams` selected (as `meltano select` writes it)."""
    return select_streams(json.loads(discovered_catalog()), streams)


@dataclass
class TapRun:
    """One run of the CLI: exit code, Singer messages on stdout, log on stderr."""

    returncode: int
    messages: list[dict]
    stderr: str
    records: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records[message["stream"]].append(message["record"])

    def ids(self, stream: str) -> list[str]:
        return [record["id"] for record in self.records[stream]]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict:
        return self.states[-1]

    def bookmark(self, stream: str) -> str | None:
        """The stream's bookmark in the last STATE (None when it has none)."""
        return self.last_state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")

    def activated(self, stream: str) -> bool:
        """Whether the stream ended with ACTIVATE_VERSION, after its records, carrying their version."""
        messages = [
            m
            for m in self.messages
            if m.get("stream") == stream and m["type"] in {"RECORD", "ACTIVATE_VERSION"}
        ]
        return (
            bool(messages)
            and messages[-1]["type"] == "ACTIVATE_VERSION"
            and all(m["version"] == messages[-1]["version"] for m in messages)
        )


def records_out(stream: str, count: int) -> Callable[[list[dict]], bool]:
    """`run_tap_until`'s stop: once `count` records of `stream` are out (counted as they come: the
    messages so far are handed over after every line, and summing them all each time was quadratic,
    over a minute of a test's time for 16,000 messages)."""
    looked_at = out = 0

    def stop(messages: list[dict]) -> bool:
        nonlocal looked_at, out
        out += sum(m["type"] == "RECORD" and m["stream"] == stream for m in messages[looked_at:])
        looked_at = len(messages)
        return out >= count

    return stop


def requests_of(emulator, kind: str) -> int:
    """How many API requests of a kind (`contacts`, `messages`, ...) the emulator served."""
    return emulator.state.stats[f"requests:{kind}"]


def tap_log(stderr: str, level: str | None = None) -> list[str]:
    """The messages the tap's own loggers (`tap-vobiz`, `tap-vobiz.<stream>`) logged, at `level` if given.

    Other lines are left out: the SDK's metrics, Python warnings (on 3.10, the SDK's
    end-of-life notice) and their continuation lines.
    """
    messages = []
    for line in stderr.splitlines():
        parts = [part.strip() for part in line.split("|", 3)]
        if len(parts) == 4 and parts[2].startswith("tap-vobiz") and level in {None, parts[1]}:
            messages.append(parts[3])
    return messages


def emulator_config(emulator, **overrides: object) -> dict:
    """A config for the tap that points at a running emulator."""
    config = {
        "auth_id": emulator.state.auth_id,
        "auth_token": emulator.state.auth_token,
        "api_url": emulator.api_url,
    }
    config.update(overrides)
    return config


def tap_command(
    config: dict,
    workdir: Path,
    state: dict | None,
    args: tuple[str, ...] = (),
    streams: tuple[str, ...] | None = CONVERSATION_STREAMS,
) -> list[str]:
    """The `tap-vobiz --config ... [--catalog ...] [--state ...]` command line, with its files written.

    `streams` are selected through a catalog; None passes no catalog (every stream).
    """
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    command = [str(TAP), "--config", str(config_path), *args]
    if streams is not None and "--catalog" not in args:
        catalog_path = workdir / "catalog.json"
        catalog_path.write_text(json.dumps(catalog_selecting(streams)))
        command += ["--catalog", str(catalog_path)]
    if state is not None:
        state_path = workdir / "state.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    return command


def run_tap(
    config: dict,
    workdir: Path,
    *,
    state: dict | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 600,
    streams: tuple[str, ...] | None = CONVERSATION_STREAMS,
) -> TapRun:
    """Run `tap-vobiz --config ... [--state ...]` and parse its output (`streams` selected)."""
    completed = subprocess.run(
        tap_command(config, workdir, state, args, streams),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    messages = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    return TapRun(completed.returncode, messages, completed.stderr)


def run_tap_until(
    config: dict,
    workdir: Path,
    stop_when: Callable[[list[dict]], bool],
    *,
    state: dict | None = None,
    on_stop: Callable[[subprocess.Popen], None] = lambda process: process.send_signal(signal.SIGKILL),
    timeout: float = 600,
    streams: tuple[str, ...] | None = CONVERSATION_STREAMS,
    args: tuple[str, ...] = (),
) -> TapRun:
    """Run the tap, reading its output as it comes; once `stop_when(messages so far)`, call `on_stop`.

    The default kills it (kill -9). What it wrote before dying is read to the end, as a
    target would; a line cut short by the kill is not a message and is left out.
    """
    stderr_path = workdir / "stderr.log"
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            tap_command(config, workdir, state, args, streams),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        messages: list[dict] = []
        stopped = False
        for line in process.stdout:
            try:
                messages.append(json.loads(line))
            except ValueError:
                continue
            if not stopped and stop_when(messages):
                stopped = True
                on_stop(process)
        returncode = process.wait(timeout=timeout)
    return TapRun(returncode, messages, stderr_path.read_text())
