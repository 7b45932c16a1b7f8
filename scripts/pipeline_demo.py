"""`make demo`: the real pipeline, `meltano run tap-vobiz target-postgres`, twice, on the embedded default.

Installs the Meltano plugins (tap-vobiz from this checkout, target-postgres from PyPI),
starts the Vobiz emulator and an embedded PostgreSQL server, runs
`meltano --environment=demo run tap-vobiz target-postgres`, lets the emulator add six
hours of activity (new conversations and messages, status changes, windows expiring;
channels, templates, contacts and canned responses created, changed and deleted),
runs the pipeline again (incremental, from the state Meltano stored), prints rows per
table, messages by status and the stored state after each run, checks the tables against
the emulator's data, and stops both servers. Meltano's output is kept in `output/`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import pipeline_stack as stack

OUTPUT = stack.ROOT / "output"


def run_pipeline(name: str, log_name: str, api: stack.Emulator, env: dict[str, str], *extra: str) -> None:
    requests_before = api.get("/_emulator/stats").get("requests", 0)
    log = OUTPUT / f"meltano-{log_name}.log"
    started = time.monotonic()
    stack.meltano(
        "--environment", stack.ENVIRONMENT, "run", *extra, "tap-vobiz", "target-postgres", env=env, log=log
    )
    seconds = time.monotonic() - started
    lines = log.read_text().splitlines()
    completed = next((line for line in lines if "Sync completed" in line), "")
    reading = next(
        (line for line in lines if "Reading messages from" in line or "Reading all messages" in line), ""
    )
    print(
        f"{name}: meltano run tap-vobiz target-postgres: {seconds:.1f}s (log: {log.relative_to(stack.ROOT)})"
    )
    if reading:
        print("  tap: " + reading.split("tap-vobiz ", 1)[-1].split(" cmd_type=")[0].split(" | ")[-1].strip())
    if completed:
        print("  tap: " + completed.split("Sync completed: ", 1)[-1].split(" cmd_type=")[0])
    print(f"  requests to the API: {api.get('/_emulator/stats').get('requests', 0) - requests_before:,}")


def print_tables(pg: stack.Postgres, env: dict[str, str]) -> None:
    summary = stack.table_summary(pg)
    for table in stack.TABLES:
        counts = summary[table]
        deleted = f", {counts['deleted']:,} deleted (_sdc_deleted_at)" if counts["deleted"] else ""
        ids = f"{counts['distinct ids']:,} distinct ids{deleted}"
        print(f"  {stack.SCHEMA}.{table}: {counts['rows']:,} rows ({ids})")
    by_status = ", ".join(f"{status} {n:,}" for status, n in summary["messages by status"].most_common())
    print(f"  messages by status: {by_status}")
    print(f"  state stored by Meltano ({stack.STATE_ID}): {json.dumps(stack.stored_state(env))}")


# Between the runs: six hours of an account's life, and what its users do to its lists meanwhile.
ACTIVITY = {
    "hours": 6,
    "new_conversations": 10,
    "new_messages": 300,
    "status_changes": 100,
    "new_campaigns": 2,
    "receipts": 400,
    "new_calls": 30,
}
ACCOUNT_CHANGES = {
    "channels": {"create": 1, "update": 1, "delete": 1},
    "templates": {"create": 4, "update": 5, "delete": 3},
    "contacts": {"create": 25, "update": 40},
    "canned_responses": {"create": 2, "delete": 2},
}


def describe_activity(activity: dict) -> str:
    """What `/_emulator/activity` did, in a line."""
    return (
        f"{len(activity['new_conversations'])} new conversations, {len(activity['new_messages'])} new "
        f"messages, {len(activity['status_changes'])} message status changes, "
        f"{len(activity['closed_conversations'])} conversations closed, {len(activity['new_campaigns'])} new "
        f"campaigns, {len(activity['campaigns_started'])} started, {len(activity['campaigns_completed'])} "
        f"completed, {len(activity['recipient_changes'])} recipient status changes, "
        f"{len(activity['new_calls'])} new calls"
    )


def change_account(api: stack.Emulator) -> str:
    """Create, update and delete rows of the account's lists; what was done, in a line."""
    done = []
    for collection, spec in ACCOUNT_CHANGES.items():
        result = api.post("/_emulator/changes", {"collection": collection, **spec})
        counts = [f"{len(ids)} {what}" for what, ids in result.items() if ids]
        done.append(f"{collection} {', '.join(counts)}")
    return "; ".join(done)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--contacts", type=int, default=1_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--call-logs", type=int, default=500)
    args = parser.parse_args()
    OUTPUT.mkdir(exist_ok=True)

    print("installing the Meltano plugins (tap-vobiz from this checkout, target-postgres from PyPI)...")
    stack.install_plugins()
    with (
        stack.emulator(
            args.conversations,
            args.messages,
            args.days,
            contacts=args.contacts,
            campaigns=args.campaigns,
            recipients=args.recipients,
            call_logs=args.call_logs,
        ) as api,
        stack.postgres(stack.ROOT / ".meltano" / "demo" / "postgres") as pg,
    ):
        [(version,)] = pg.query("SHOW server_version")
        print(
            f"vobiz emulator: {args.conversations:,} conversations, {args.messages:,} messages, "
            f"{args.contacts:,} contacts, {args.campaigns} campaigns, {args.recipients:,} recipients, "
            f"{args.call_logs:,} call logs at {api.api_url}"
        )
        print(f"embedded PostgreSQL {version}: socket in {pg.socket_dir}")
        env = stack.meltano_env(api.api_url, pg)
        # A fresh database: start the demo pipeline's state over too.
        stack.meltano(
            "--environment", stack.ENVIRONMENT, "state", "clear", "--force", stack.STATE_ID, env=env
        )

        run_pipeline("run 1 (no state: full sync)", "run1", api, env)
        print_tables(pg, env)

        activity = api.post("/_emulator/activity", ACTIVITY)
        print(f"emulator: +6 hours: {describe_activity(activity)}")
        print("  " + change_account(api))
        run_pipeline("run 2 (incremental, from the stored state)", "run2", api, env)
        print_tables(pg, env)

        problems = stack.warehouse_differences(pg, api.get("/_emulator/export"))
        verdict = "yes" if not problems else "NO: " + "; ".join(problems)
        print(
            "PostgreSQL tables = the emulator's data (ids, no duplicates, current statuses, "
            f"deletions applied): {verdict}"
        )
    print("stopped the emulator and PostgreSQL")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
