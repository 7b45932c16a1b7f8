"""Run the tap against the emulator under each kind of fault and print what happened.

Every scenario starts a fresh emulator with the same generated account, injects one kind
of fault, runs the installed `tap-vobiz` command on the conversations and messages streams
(scripted faults count requests in order: the first two are the conversation lists), and
reports its exit code, the retries and requests it made, its wall time, and whether its
output holds exactly the account's messages (each id once). Prints a markdown table.
Faults of the page-numbered lists (404 on a channel's templates, a page served twice,
rows moving while a list is paged) are tested in tests/test_account_streams.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.pipeline_stack import select_streams
from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import Faults, RunningEmulator

TAP = Path(sys.executable).with_name("tap-vobiz")
CONVERSATIONS, MESSAGES = 100, 5000

SCENARIOS: list[tuple[str, dict, dict]] = [
    # (name, faults, config overrides)
    ("no fault", {}, {}),
    ("10% 5xx", {"error_rate": 0.1, "seed": 1}, {}),
    ("2% malformed or truncated 200 bodies", {"malformed_rate": 0.02, "seed": 5}, {}),
    ("burst of five 429s (Retry-After: 1)", {"script": ["429"] * 5}, {}),
    ("429 with Retry-After as an HTTP date", {"script": ["429-date"]}, {}),
    ("429 without Retry-After", {"script": ["429-bare"]}, {}),
    ("connection reset", {"script": ["ok", "reset"]}, {}),
    ("slow response past request_timeout (3 s vs 1 s)", {"script": ["ok", "slow:3"]}, {"request_timeout": 1}),
    ("503 on every request, max_retry_seconds=5", {"error_rate": 1.0}, {"max_retry_seconds": 5}),
    ("401 (wrong auth_token)", {}, {"auth_token": "wrong"}),
    ("403", {"script": ["403"]}, {}),
    ("400 on a messages page", {"script": ["ok", "ok", "400"]}, {}),
    ("404 on one conversation's messages", {"script": ["ok", "ok", "404"]}, {}),
    ("cursor loop", {"script": ["ok", "ok", "loop", "loop", "loop"]}, {}),
    ("plain http to a remote host", {}, {"api_url": "http://api.vobiz.ai/api/v1/messaging"}),
]


def run(name: str, faults: dict, overrides: dict, workdir: Path) -> str:
    dataset = Dataset(CONVERSATIONS, MESSAGES, seed=7, days=1)
    with RunningEmulator(dataset) as emulator:
        emulator.state.faults = Faults(**faults)
        config = {"auth_id": "MA_EMULATOR", "auth_token": "emulator-token", "api_url": emulator.api_url}
        config.update(overrides)
        (workdir / "config.json").write_text(json.dumps(config))
        started = time.monotonic()
        command = [
            str(TAP),
            "--config",
            str(workdir / "config.json"),
            "--catalog",
            str(workdir / "catalog.json"),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        requests = emulator.state.stats["requests"]
        injected = sum(n for key, n in emulator.state.stats.items() if key.startswith("faults:"))
        expected = {m["id"] for c in dataset.conversations for m in c.messages}
    ids = [
        json.loads(line)["record"]["id"]
        for line in result.stdout.splitlines()
        if '"type":"RECORD"' in line and '"stream":"messages"' in line
    ]
    retries = re.search(r"(\d+) retries", result.stderr)
    exact = (
        "yes" if set(ids) == expected and len(ids) == len(set(ids)) else f"{len(set(ids))} of {len(expected)}"
    )
    errors = [line.split("| ", 3)[-1] for line in result.stderr.splitlines() if "| ERROR" in line]
    outcome = errors[0] if errors else ("skipped, warned" if "Skipping conversation" in result.stderr else "")
    return (
        f"| {name} | {injected} | {result.returncode} | {retries.group(1) if retries else '-'} | {requests} "
        f"| {seconds:.1f} | {exact} | {outcome[:150]} |"
    )


def main() -> int:
    print(f"Account: {CONVERSATIONS} conversations, {MESSAGES} messages.\n")
    print("| fault | injected | exit | retries | requests | seconds | messages exact | error line |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        discovered = subprocess.run(
            [str(TAP), "--discover"], capture_output=True, text=True, check=True
        ).stdout
        catalog = select_streams(json.loads(discovered), ("conversations", "messages"))
        (Path(tmp) / "catalog.json").write_text(json.dumps(catalog))
        for name, faults, overrides in SCENARIOS:
            print(run(name, faults, overrides, Path(tmp)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
