"""Running the installed `tap-vobiz` command and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TAP = Path(sys.executable).with_name("tap-vobiz")


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


def emulator_config(emulator, **overrides: object) -> dict:
    """A config for the tap that points at a running emulator."""
    config = {
        "auth_id": emulator.state.auth_id,
        "auth_token": emulator.state.auth_token,
        "api_url": emulator.api_url,
    }
    config.update(overrides)
    return config


def run_tap(
    config: dict,
    workdir: Path,
    *,
    state: dict | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> TapRun:
    """Run `tap-vobiz --config ... [--state ...]` and parse its output."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    command = [str(TAP), "--config", str(config_path), *args]
    if state is not None:
        state_path = workdir / "state.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    messages = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    return TapRun(completed.returncode, messages, completed.stderr)
