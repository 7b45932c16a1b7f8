"""`make demo`: the real pipeline, `meltano run tap-vobiz target-postgres dbt-postgres:build`, twice,
on the embedded default.

Installs the Meltano plugins (tap-vobiz from this checkout, target-postgres from PyPI),
starts the Vobiz emulator and an embedded PostgreSQL server, runs
`meltano --environment=demo run tap-vobiz target-postgres`, lets the emulator add six
hours of activity (new conversations and messages, status changes, windows expiring;
channels, templates, contacts and canned responses created, changed and deleted),
runs the pipeline again (incremental, from the state Meltano stored), prints rows per
table, messages by status and the stored state after each run, checks the tables against
the emulator's data. After each load dbt builds and tests the warehouse models (transform/;
the second build is incremental); the demo prints a few rows of the marts and checks their
figures against the same figures computed from the emulator's data, then stops both servers.
A webhook receiver (`vobiz-webhooks serve`) subscribed to the emulator captures its pushed
events; the tap loads them (`webhook_capture`) and the models merge them (`vobiz_using_message_statuses`):
between the runs the emulator also sends a read receipt for a month-old message, which the
second run's pull cannot see (past its lookback) and the marts show all the same.
Meltano's output is kept in `output/`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import marts
from harness import pipeline_stack as stack
from harness.pipeline_stack import ACCOUNT_CHANGES
from harness.webhook_receiver import running_receiver, subscribe

OUTPUT = stack.ROOT / "output"
# The demo environment of meltano.yml points tap-vobiz at this port (`--serve`).
DEMO_PORT = 8765
# The demo's own webhook receiver and subscription: not a secret.
WEBHOOK_SECRET = "demo-webhook-secret"  # noqa: S105
CAPTURE = OUTPUT / "webhook-capture"
# The models merge the statuses WhatsApp pushed (docs/webhooks.md).
WITH_STATUSES = json.dumps({"vobiz_using_message_statuses": True})


def run_pipeline(name: str, log_name: str, api: stack.Emulator, env: dict[str, str], *extra: str) -> None:
    requests_before = api.get("/_emulator/stats").get("requests", 0)
    log = OUTPUT / f"meltano-{log_name}.log"
    started = time.monotonic()
    stack.meltano(
        "--environment", stack.ENVIRONMENT, "run", *extra, "tap-vobiz", "target-postgres",
        "dbt-postgres:build", env=env, log=log,
    )  # fmt: skip
    seconds = time.monotonic() - started
    lines = log.read_text().splitlines()
    completed = next((line for line in lines if "Sync completed" in line), "")
    reading = next(
        (line for line in lines if "Reading messages from" in line or "Reading all messages" in line), ""
    )
    print(
        f"{name}: meltano run tap-vobiz target-postgres dbt-postgres:build: {seconds:.1f}s "
        f"(log: {log.relative_to(stack.ROOT)})"
    )
    if reading:
        print("  tap: " + reading.split("tap-vobiz ", 1)[-1].split(" cmd_type=")[0].split(" | ")[-1].strip())
    if completed:
        print("  tap: " + completed.split("Sync completed: ", 1)[-1].split(" cmd_type=")[0])
    print(f"  requests to the API: {api.get('/_emulator/stats').get('requests', 0) - requests_before:,}")
    if built := next((line for line in lines if "Done. PASS=" in line), ""):
        print("  dbt build: " + built.split("Done. ", 1)[1].strip())


def print_tables(pg: stack.Postgres, env: dict[str, str]) -> None:
    summary = stack.table_summary(pg)
    for table in stack.TABLES:
        counts = summary[table]
        deleted = f", {counts['deleted']:,} deleted (_sdc_deleted_at)" if counts["deleted"] else ""
        ids = f"{counts['distinct ids']:,} distinct ids{deleted}"
        print(f"  {stack.SCHEMA}.{table}: {counts['rows']:,} rows ({ids})")
    by_status = ", ".join(f"{status} {n:,}" for status, n in summary["messages by status"].most_common())
    print(f"  messages by status: {by_status}")
    state = stack.stored_state(env)
    bookmarks = state.get("singer_state", {}).get("bookmarks", {})
    marks = [
        mark["replication_key_value"] for mark in bookmarks.values() if mark.get("replication_key_value")
    ]
    print(
        f"  state stored by Meltano: {len(marks)} bookmarks, the latest {max(marks, default='none')}, "
        f"{len(json.dumps(state))} bytes (`meltano --environment={stack.ENVIRONMENT} state get` shows it)"
    )


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
    parser.add_argument(
        "--serve",
        action="store_true",
        help="only start the emulator (on port 8765) and PostgreSQL for meltano.yml's demo environment, "
        "and keep them running until Ctrl-C: the embedded default by hand (docs/meltano.md)",
    )
    args = parser.parse_args()
    if args.serve:
        return serve(args)
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
        running_receiver(_fresh(CAPTURE), secret=WEBHOOK_SECRET) as receiver,
    ):
        [(version,)] = pg.query("SHOW server_version")
        print(
            f"vobiz emulator: {args.conversations:,} conversations, {args.messages:,} messages, "
            f"{args.contacts:,} contacts, {args.campaigns} campaigns, {args.recipients:,} recipients, "
            f"{args.call_logs:,} call logs at {api.api_url}"
        )
        print(f"embedded PostgreSQL {version}: socket in {pg.socket_dir}")
        subscribe(api.api_url, receiver)
        print(
            f"webhook receiver (vobiz-webhooks serve) at {receiver.url}, subscribed to the emulator's "
            f"webhooks, capturing to {CAPTURE.relative_to(stack.ROOT)} (the tap's webhook_capture)"
        )
        env = stack.meltano_env(
            api.api_url, pg, TAP_VOBIZ_WEBHOOK_CAPTURE=str(CAPTURE), DBT_POSTGRES_VARS=WITH_STATUSES
        )
        # A fresh database: start the demo pipeline's state over too.
        stack.meltano(
            "--environment", stack.ENVIRONMENT, "state", "clear", "--force", stack.STATE_ID, env=env
        )

        run_pipeline("run 1 (no state: full sync)", "run1", api, env)
        print_tables(pg, env)

        activity = api.post("/_emulator/activity", ACTIVITY)
        print(f"emulator: +6 hours: {describe_activity(activity)}")
        print("  " + change_account(api))
        # What a rerun's pull can see; then a receipt past its lookback, which only a webhook brings.
        served = api.get("/_emulator/export")
        late = late_receipt(api, served)
        run_pipeline("run 2 (incremental, from the stored state)", "run2", api, env)
        print_tables(pg, env)

        problems = stack.warehouse_differences(pg, served)
        verdict = "yes" if not problems else "NO: " + "; ".join(problems)
        print(
            "PostgreSQL tables = the emulator's data (ids, no duplicates, current statuses, "
            f"deletions applied): {verdict}"
        )
        problems += check_late_receipt(pg, late)
        print_marts(pg)
        mart_problems = marts.mart_differences(marts.loaded_marts(pg), served, {late["id"]: "read"})
        verdict = "yes" if not mart_problems else "NO: " + "; ".join(mart_problems)
        print(f"marts (schema {marts.MARTS_SCHEMA}) = the figures of the emulator's data: {verdict}")
    print("stopped the emulator, PostgreSQL and the webhook receiver")
    return 1 if problems or mart_problems else 0


def _fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    return directory


def late_receipt(api: stack.Emulator, served: dict) -> dict:
    """WhatsApp's read receipt, now, for the oldest outbound message not yet read: days after the
    tap's lookback (72 hours) stopped reading it again. The emulator pushes it as a webhook."""
    late = min(
        (
            m
            for items in served["messages"].values()
            for m in items
            if m.get("direction") == "outbound" and m.get("status") in {"sent", "delivered"}
            and m.get("meta_message_id")
        ),
        key=lambda m: m["created_at"],
    )  # fmt: skip
    api.post("/_emulator/statuses", {"ids": [late["id"]], "status": "read"})
    api.post("/_emulator/webhooks/wait", {"timeout": 60})
    deliveries = api.get("/_emulator/webhooks")
    age = _time(api.get("/_emulator/export")["now"]) - _time(late["created_at"])
    print(
        f"emulator: a read receipt for message {late['id']}, sent {age.days} days ago ({late['status']}), "
        f"beyond the tap's 72-hour lookback: only its webhook tells it "
        f"({len(deliveries.get('events', [])):,} webhook events sent since run 1)"
    )
    return late


def check_late_receipt(pg: stack.Postgres, late: dict) -> list[str]:
    """The late receipt: the pulled table still says what the API said when last read; vobiz__messages,
    which merges the statuses WhatsApp pushed, says read."""
    [(pulled,)] = pg.query(f"SELECT status FROM {stack.SCHEMA}.messages WHERE id = %s", late["id"])  # noqa: S608
    [(merged, status_at)] = pg.query(
        f"SELECT status, status_at FROM {marts.MARTS_SCHEMA}.vobiz__messages WHERE message_id = %s",  # noqa: S608
        late["id"],
    )
    exact = merged == "read" and pulled == late["status"]
    loaded = pg.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", stack.SCHEMA
    )
    counts = [
        f"{stack.SCHEMA}.{table}: {pg.query(f'SELECT count(*) FROM {stack.SCHEMA}.{table}')[0][0]:,} rows"  # noqa: S608
        for table in ("webhook_events", "message_statuses", "call_events")
        if (table,) in loaded
    ]
    print(f"  loaded from the webhook capture: {', '.join(counts)}")
    print(
        f"the late read receipt: {stack.SCHEMA}.messages (pulled) says {pulled}, vobiz__messages (pulled "
        f"and pushed) says {merged} at {status_at:%Y-%m-%d %H:%M:%S}: {'yes' if exact else 'NO'}"
    )
    return [] if exact else [f"message {late['id']}: {merged} in vobiz__messages, read pushed"]


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def serve(args: argparse.Namespace) -> int:
    """The two servers of meltano.yml's demo environment, until Ctrl-C (or SIGTERM)."""
    account = {
        "contacts": args.contacts,
        "campaigns": args.campaigns,
        "recipients": args.recipients,
        "call_logs": args.call_logs,
    }
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with (
        stack.emulator(args.conversations, args.messages, args.days, port=DEMO_PORT, **account) as api,
        stack.postgres(stack.ROOT / ".meltano" / "demo" / "postgres") as pg,
    ):
        print(f"vobiz emulator at {api.api_url}; embedded PostgreSQL: socket in {pg.socket_dir}")
        print("ready: in another terminal, from this directory:")
        meltano = f".venv/bin/meltano --environment={stack.ENVIRONMENT}"
        print(f"  {meltano} state clear --force {stack.STATE_ID}")
        print(f"  {meltano} run tap-vobiz target-postgres dbt-postgres:build")
        print("Ctrl-C stops both servers", flush=True)
        try:
            while api.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    print("stopped the emulator and PostgreSQL")
    return 0


def print_marts(pg: stack.Postgres) -> None:
    """A few rows of the campaign, channel-day, template, response-time and spend marts."""
    schema = marts.MARTS_SCHEMA
    print("campaign performance (top 5 by recipients; rates over the attempted sends):")
    for name, status, recipients, attempted, rate, read_rate, error in pg.query(
        f"SELECT campaign_name, status, recipients, attempted, delivery_rate, read_rate, top_error_code "  # noqa: S608
        f"FROM {schema}.vobiz__campaign_performance ORDER BY recipients DESC, campaign_id LIMIT 5"
    ):
        print(
            f"  {name} ({status}): {recipients:,} recipients, {attempted:,} attempted, delivered "
            f"{_rate(rate)}, read {_rate(read_rate)}, top error {error or '-'}"
        )
    print("channel daily (latest 5 channel-days):")
    for phone, day, inbound, outbound, failed, started, billable, calls in pg.query(
        f"SELECT phone_number, date_day, inbound_messages, outbound_messages, failed_outbound_messages, "  # noqa: S608
        f"conversations_started, billable_conversations, calls FROM {schema}.vobiz__channel_daily "
        "ORDER BY date_day DESC, channel_id LIMIT 5"
    ):
        number = phone or "(a channel no longer listed)"
        print(
            f"  {number} {day:%Y-%m-%d}: {inbound} in, {outbound} out ({failed} failed), {started} "
            f"conversations ({billable} billable), {calls} calls"
        )
    print("template performance (top 3 templates by sends):")
    for name, language, sends, rate, failure_rate in pg.query(
        "SELECT template_name, template_language, sum(sends), "  # noqa: S608
        "sum(delivered) * 1.0 / nullif(sum(attempted), 0), sum(failed) * 1.0 / nullif(sum(attempted), 0) "
        f"FROM {schema}.vobiz__template_performance "
        "GROUP BY template_name, template_language ORDER BY 3 DESC, 1, 2 LIMIT 3"
    ):
        print(
            f"  {name} ({language}): {sends:,} sends, delivered {_rate(rate)}, failed {_rate(failure_rate)}"
        )
    [(answered, median, business, window)] = pg.query(
        "SELECT count(first_response_seconds), "  # noqa: S608
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_business_seconds), "
        "avg(CASE WHEN first_response_within_window THEN 1.0 ELSE 0 END) "
        f"FILTER (WHERE first_response_seconds IS NOT NULL) FROM {schema}.vobiz__response_times"
    )
    print(
        f"first response: {answered:,} conversations answered, median {median or 0:,.0f}s "
        f"({business or 0:,.0f}s of business hours), {_rate(window)} within the 24-hour window"
    )
    [(conversations, spend, currency)] = pg.query(
        f"SELECT sum(billable_conversations), sum(estimated_spend), max(currency) "  # noqa: S608
        f"FROM {schema}.vobiz__channel_daily_spend"
    )
    [(campaign_spend,)] = pg.query(f"SELECT sum(estimated_spend) FROM {schema}.vobiz__campaign_spend")  # noqa: S608
    print(
        f"estimated spend (the example rate card): {conversations or 0:,} billable conversations "
        f"{spend or 0:,.2f} {currency or ''}, campaign deliveries {campaign_spend or 0:,.2f} {currency or ''}"
    )


def _rate(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


INTERRUPTED = (
    "make demo interrupted (Ctrl-C): the emulator and PostgreSQL are stopped; the next make demo starts "
    "over (a fresh database and state)"
)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The servers' `with` blocks have stopped them; what was interrupted is no news to who pressed it.
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
