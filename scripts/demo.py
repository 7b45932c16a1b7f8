"""The main job on the embedded default: sync from the local emulator, add activity, sync again.

Starts the emulator, runs `tap-vobiz` (full sync), lets the emulator add six hours of
activity, reruns `tap-vobiz` with the STATE the first run emitted, prints a summary and
stops the emulator. Singer output goes to `output/`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"
TAP = Path(sys.executable).with_name("tap-vobiz")


def start_emulator(conversations: int, messages: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vobiz_emulator",
            "--port",
            "0",
            "--conversations",
            str(conversations),
            "--messages",
            str(messages),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    banner = process.stdout.readline().strip()  # type: ignore[union-attr]
    if "serving " not in banner:
        process.kill()
        raise SystemExit(f"the emulator did not start: {banner!r}")
    print(banner)
    return process, banner.rsplit("serving ", 1)[1]


def run_tap(config_path: Path, name: str, state: dict | None) -> dict:
    """Run the tap, keep its Singer output in output/NAME.jsonl, and summarise it."""
    command = [str(TAP), "--config", str(config_path)]
    if state is not None:
        state_path = OUTPUT / f"{name}.state-in.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    started = time.monotonic()
    out_path = OUTPUT / f"{name}.jsonl"
    with out_path.open("w") as out, (OUTPUT / f"{name}.log").open("w") as log:
        code = subprocess.call(command, stdout=out, stderr=log)
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"tap-vobiz exited {code}; see {OUTPUT / (name + '.log')}")
    records: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    last_state: dict = {}
    for line in out_path.open():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records[message["stream"]] += 1
            if message["stream"] == "messages":
                statuses[message["record"].get("status")] += 1
        elif message["type"] == "STATE":
            last_state = message["value"]
    summary = next(
        (
            line.split("| ", 3)[-1].strip()
            for line in (OUTPUT / f"{name}.log").open()
            if "Sync completed" in line
        ),
        "",
    )
    return {
        "seconds": seconds,
        "records": records,
        "statuses": statuses,
        "state": last_state,
        "summary": summary,
    }


def post(base_url: str, path: str, payload: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the loopback emulator
        base_url + path,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.load(response)


def report(title: str, run: dict) -> None:
    records = ", ".join(f"{n} {stream}" for stream, n in sorted(run["records"].items()))
    statuses = ", ".join(f"{status}: {n}" for status, n in run["statuses"].most_common())
    print(f"{title}: {records} in {run['seconds']:.1f}s")
    print(f"  messages by status: {statuses or '-'}")
    print(f"  tap: {run['summary']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()

    OUTPUT.mkdir(exist_ok=True)
    emulator, api_url = start_emulator(args.conversations, args.messages)
    base_url = api_url.split("/api/", 1)[0]
    try:
        config_path = OUTPUT / "config.json"
        config_path.write_text(
            json.dumps(
                {
                    "auth_id": "MA_EMULATOR",
                    "auth_token": "emulator-token",
                    "api_url": api_url,
                }
            )
        )
        first = run_tap(config_path, "run1", None)
        report("run 1 (full sync)", first)

        activity = post(
            base_url,
            "/_emulator/activity",
            {
                "hours": 6,
                "new_conversations": 10,
                "new_messages": 300,
                "status_changes": 100,
            },
        )
        print(
            f"emulator: +6h, {len(activity['new_conversations'])} new conversations, "
            f"{len(activity['new_messages'])} new messages, "
            f"{len(activity['closed_conversations'])} conversations closed"
        )
        second = run_tap(config_path, "run2", first["state"])
        report("run 2 (incremental, with run 1's state)", second)

        state = second["state"]
        partitions = state.get("bookmarks", {}).get("messages", {}).get("partitions", [])
        print(
            f"state after run 2: {len(json.dumps(state))} bytes; conversations bookmark "
            f"{state['bookmarks']['conversations'].get('replication_key_value')}; "
            f"{len(partitions)} message bookmarks (one per conversation)"
        )
        print(f"Singer output and logs: {OUTPUT}/")
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
