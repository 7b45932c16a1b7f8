"""`make tap-demo`: the tap alone (no Meltano) on the emulator: sync, add activity, sync again.

Starts the emulator, runs `tap-vobiz` (full sync), lets the emulator add six hours of
activity, reruns `tap-vobiz` with the STATE the first run emitted, checks that the two
runs upserted by `id` equal the emulator's data exactly (every new message, status change
and conversation status), prints a summary and stops the emulator. Singer output goes to
`output/`. `--conversations 5000 --messages 250000 --days 90` is the scale of issue 3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import pipeline_stack as stack
from scripts.pipeline_demo import ACTIVITY, change_account, describe_activity

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"
TAP = Path(sys.executable).with_name("tap-vobiz")


def run_tap(config_path: Path, name: str, state: dict | None, target: stack.UpsertingTarget) -> dict:
    """Run the tap, keep its Singer output in output/NAME.jsonl, load it into `target`, and summarise it."""
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
    rows: dict[str, dict[str, dict]] = {table: {} for table in stack.TABLES}
    last_state: dict = {}
    state_messages = state_bytes = 0
    for line in out_path.open():
        message = json.loads(line)
        target.load(message)
        if message["type"] == "RECORD":
            records[message["stream"]] += 1
            rows[message["stream"]][message["record"]["id"]] = message["record"]
            if message["stream"] == "messages":
                statuses[message["record"].get("status")] += 1
        elif message["type"] == "STATE":
            last_state = message["value"]
            state_messages += 1
            state_bytes += len(line)
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
        "state_messages": state_messages,
        "state_bytes": state_bytes,
        "rows": rows,
        "summary": summary,
    }


def print_requests(api: stack.Emulator, conversations: int) -> None:
    """What the run cost: the emulator's requests per endpoint, and which parents' lists were read."""
    stats = api.get("/_emulator/stats")
    paths = [path.split("?")[0] for path in api.get("/_emulator/requests")]
    read = {path.split("/conversations/")[1].split("/")[0] for path in paths if path.endswith("/messages")}
    campaigns = {path.split("/campaigns/")[1].split("/")[0] for path in paths if path.endswith("/recipients")}
    listed = len(api.get("/_emulator/export")["campaigns"])
    kinds = ", ".join(
        f"{stats[key]:,} {key.split(':', 1)[1]}" for key in sorted(stats) if key.startswith("requests:")
    )
    print(
        f"  requests: {stats.get('requests', 0):,} ({kinds}); messages of {len(read):,} of the account's "
        f"{conversations:,} conversations, recipients of {len(campaigns):,} of {listed:,} campaigns"
    )


def report(title: str, run: dict) -> None:
    records = ", ".join(f"{n} {stream}" for stream, n in sorted(run["records"].items()))
    statuses = ", ".join(f"{status}: {n}" for status, n in run["statuses"].most_common())
    print(f"{title}: {records} in {run['seconds']:.1f}s")
    print(f"  STATE: {run['state_messages']} messages, {run['state_bytes']:,} bytes")
    print(f"  messages by status: {statuses or '-'}")
    print(f"  tap: {run['summary']}")


# What run 2 must bring: (what changed, the activity's ids of it, the table it lands in).
BROUGHT = (
    ("new messages", "new_messages", "messages"),
    ("message status changes", "status_changes", "messages"),
    ("new conversations", "new_conversations", "conversations"),
    ("closed conversations", "closed_conversations", "conversations"),
    ("new campaigns", "new_campaigns", "campaigns"),
    ("recipient status changes", "recipient_changes", "campaign_recipients"),
    ("new calls", "new_calls", "call_logs"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--templates-per-channel", type=int, default=8)
    parser.add_argument("--contacts", type=int, default=1_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--call-logs", type=int, default=500)
    parser.add_argument(
        "--max-workers", type=int, default=None, help="the tap's max_workers (default: its own)"
    )
    args = parser.parse_args()
    account = {
        name: getattr(args, name)
        for name in ("channels", "templates_per_channel", "contacts", "campaigns", "recipients", "call_logs")
    }

    OUTPUT.mkdir(exist_ok=True)
    with stack.emulator(args.conversations, args.messages, args.days, **account) as api:
        api_url = api.api_url
        sizes = ", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in account.items())
        print(f"vobiz emulator: {args.conversations:,} conversations, {args.messages:,} messages, {sizes}")
        print(f"  at {api_url}")
        config = {"auth_id": "MA_EMULATOR", "auth_token": "emulator-token", "api_url": api_url}
        if args.max_workers:
            config["max_workers"] = args.max_workers
        config_path = OUTPUT / "config.json"
        config_path.write_text(json.dumps(config))
        target = stack.UpsertingTarget()
        first = run_tap(config_path, "run1", None, target)
        report("run 1 (full sync)", first)
        print_requests(api, args.conversations)
        api.post("/_emulator/reset", {})

        activity = api.post("/_emulator/activity", ACTIVITY)
        print(f"emulator: +6 hours: {describe_activity(activity)}")
        print("  " + change_account(api))
        second = run_tap(config_path, "run2", first["state"], target)
        report("run 2 (incremental, with run 1's state)", second)
        print_requests(api, args.conversations + len(activity["new_conversations"]))

        served_now = api.get("/_emulator/export")
        missing = {name: set(activity[key]) - second["rows"][table].keys() for name, key, table in BROUGHT}
        missing["closed conversations"] |= {
            c
            for c in activity["closed_conversations"]
            if second["rows"]["conversations"].get(c, {}).get("status") != "closed"
        }
        print(
            "  run 2 brought: "
            + ", ".join(
                f"{name} {len(activity[key]) - len(missing[name])}/{len(activity[key])}"
                for name, key, _ in BROUGHT
            )
        )
        problems = stack.table_differences(target.current(), served_now) + [
            f"{len(v)} {k} not in run 2" for k, v in missing.items() if v
        ]
        verdict = "yes" if not problems else "NO: " + "; ".join(problems)
        print(f"run 1 + run 2 upserted by id (ACTIVATE_VERSION applied) = the emulator's data: {verdict}")
        print(f"state after run 2: {json.dumps(second['state'])}")
        print(f"Singer output and logs: {OUTPUT}/")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
