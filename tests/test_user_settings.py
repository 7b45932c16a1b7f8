"""Settings and bookmarks as users really set them (issue 19): start_date, Meltano's replication method,
the recipients rule, clocks, state files as Meltano prints them, secrets of any type, proxies, 429 bodies,
and a log a person can read. Each runs the real CLI against the emulator.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading

import pytest

from harness.pipeline_stack import TABLES
from tap_vobiz.decoding import format_timestamp, parse_timestamp
from tests.expected_output import assert_exact_sync, assert_tables_equal, expected_tables, upsert
from tests.loopback_proxy import CountingProxy
from tests.tap_runner import TapRun, catalog_selecting, emulator_config, run_tap, tap_log
from vobiz_emulator.account_data import rfc3339
from vobiz_emulator.server import Faults

EVERY_STREAM = TABLES


def _activated(run: TapRun, stream: str) -> bool:
    messages = [
        m for m in run.messages if m.get("stream") == stream and m["type"] in {"RECORD", "ACTIVATE_VERSION"}
    ]
    return bool(messages) and messages[-1]["type"] == "ACTIVATE_VERSION"


def _bookmark(run: TapRun, stream: str) -> str | None:
    return run.last_state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")


# 1. start_date: facts honour it, dimensions a fact can point at are emitted whole


def test_start_date_limits_facts_and_leaves_dimensions_whole_with_deletions(start_emulator, tmp_path):
    emulator = start_emulator(
        60, 3000, account={"contacts": 300, "campaigns": 9, "recipients": 300, "call_logs": 60}
    )
    dataset = emulator.state.dataset
    start = rfc3339(dataset.now - dt.timedelta(days=3))
    config = emulator_config(emulator, start_date=start)

    first = run_tap(config, tmp_path, streams=None)

    assert first.returncode == 0, first.stderr[-2000:]
    every = expected_tables(dataset, EVERY_STREAM)
    # Dimensions: whole, then ACTIVATE_VERSION (before: 58 of 300 contacts, 1 of 9 campaigns, none).
    for stream in ("contacts", "campaigns", "channels", "templates", "canned_responses"):
        assert sorted(first.ids(stream)) == sorted(every[stream]), stream
        assert _activated(first, stream), stream
    # Every contact a message names is in contacts.
    assert {r["contact_id"] for r in first.records["messages"]} <= set(first.ids("contacts"))
    # Facts: from start_date.
    assert sorted(first.ids("messages")) == sorted(
        m["id"] for c in dataset.conversations for m in c.messages if m["created_at"] >= start
    )
    for stream in ("campaign_recipients", "call_logs"):
        assert sorted(first.ids(stream)) == sorted(
            row_id for row_id, row in every[stream].items() if row["updated_at"] >= start
        ), stream
    # A deleted contact leaves the warehouse after a full refresh with start_date set.
    deleted = dataset.account.change("contacts", delete=4)["deleted"]
    refresh = run_tap(config, tmp_path, streams=("contacts",))
    tables = upsert(first, refresh, tables=("contacts",))
    assert not set(deleted) & tables["contacts"].keys()
    assert_tables_equal(tables, dataset, ("contacts",))


# Year 1: Go's and .NET's zero time, a common "from the beginning" (issue 28)

ZERO_TIME = "0001-01-01T00:00:00Z"


def test_a_start_date_at_year_one_reads_everything(start_emulator, tmp_path):
    emulator = start_emulator(20, 400, account={"campaigns": 9, "recipients": 300})
    dataset = emulator.state.dataset
    # A STATE after every campaign: its resume cutoff is worked out from the start_date too.
    config = emulator_config(emulator, start_date=ZERO_TIME, state_interval_seconds=0)

    for streams in (("campaigns", "campaign_recipients"), ("conversations", "messages")):
        run = run_tap(config, tmp_path, streams=streams)

        # Before: exit 1, `OverflowError: date value out of range` (start_date - receipt_window_days).
        assert "Traceback" not in run.stderr, run.stderr[-2000:]
        assert_exact_sync(run, dataset, streams)


def test_bookmarks_at_year_one_read_everything_again(start_emulator, tmp_path):
    emulator = start_emulator(20, 400, account={"contacts": 80, "campaigns": 9, "recipients": 300})
    dataset = emulator.state.dataset
    streams = ("conversations", "messages", "contacts", "campaigns", "campaign_recipients", "call_logs")
    first = run_tap(emulator_config(emulator), tmp_path, streams=streams)
    state = json.loads(json.dumps(first.last_state))
    for stream in streams:
        state["bookmarks"][stream]["replication_key_value"] = ZERO_TIME
    for fan_out in ("messages", "campaign_recipients"):  # an interrupted run's, begun at year 1
        state["bookmarks"][fan_out]["resume"] = {"after": None, "horizon": ZERO_TIME, "clock": ZERO_TIME}

    rerun = run_tap(emulator_config(emulator), tmp_path, state=state, streams=streams)

    # Before: exit 1, `OverflowError: date value out of range` (bookmark - lookback_hours).
    assert "Traceback" not in rerun.stderr, rerun.stderr[-2000:]
    assert_exact_sync(rerun, dataset, streams)
    assert any(f"from {ZERO_TIME} (bookmark {ZERO_TIME}," in line for line in tap_log(rerun.stderr, "INFO"))
    for stream in streams:
        assert _bookmark(rerun, stream) == _bookmark(first, stream), stream


def test_the_earliest_time_formats_as_it_parses():
    earliest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    assert format_timestamp(earliest) == ZERO_TIME
    assert parse_timestamp(format_timestamp(earliest)) == earliest
    # Before year 1 in UTC: written as the earliest time there is, not an OverflowError.
    assert format_timestamp(dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))) == ZERO_TIME


# 2. The catalog's replication method


def _catalog(streams: tuple[str, ...], method: str | None = None, *, drop_keys: bool = False) -> dict:
    """The discovered catalog with `streams` selected, as Meltano writes `metadata` extras into it."""
    catalog = catalog_selecting(streams)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] not in streams:
            continue
        root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        if method:
            entry["replication_method"] = method
            root["replication-method"] = method
        if drop_keys:
            entry.pop("replication_key", None)
            root.pop("replication-key", None)
            root.pop("valid-replication-keys", None)
    return catalog


def _with_catalog(tmp_path, catalog: dict) -> tuple[str, ...]:
    path = tmp_path / "forced-catalog.json"
    path.write_text(json.dumps(catalog))
    return ("--catalog", str(path))


def test_a_full_table_catalog_reads_everything_and_activates_after_the_records(start_emulator, tmp_path):
    emulator = start_emulator(10, 300, days=20)
    dataset = emulator.state.dataset
    streams = ("conversations", "messages")
    first = run_tap(emulator_config(emulator), tmp_path, streams=streams)
    dataset.add_activity(hours=2, new_messages=20, status_changes=10)

    rerun = run_tap(
        emulator_config(emulator),
        tmp_path,
        state=first.last_state,
        args=_with_catalog(tmp_path, _catalog(streams, "FULL_TABLE")),
        streams=None,
    )

    # Before: ACTIVATE_VERSION first, then only 51 messages and 3 conversations: 249 live messages
    # and 7 conversations soft-deleted by the target.
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for stream in streams:
        assert _activated(rerun, stream), stream
    tables = upsert(first, rerun, tables=streams)
    assert_tables_equal(tables, dataset, streams)
    assert len(rerun.records["messages"]) == dataset.message_count()


def test_a_catalog_without_replication_keys_still_keeps_bookmarks(start_emulator, tmp_path):
    emulator = start_emulator(10, 300)
    streams = ("conversations", "messages", "contacts")

    run = run_tap(
        emulator_config(emulator), tmp_path, args=_with_catalog(tmp_path, _catalog(streams, drop_keys=True))
    )

    assert run.returncode == 0, run.stderr[-2000:]
    for stream in streams:
        assert _bookmark(run, stream), stream


@pytest.mark.parametrize(
    ("stream", "method"), [("canned_responses", "INCREMENTAL"), ("messages", "LOG_BASED")]
)
def test_a_replication_method_a_stream_cannot_honour_is_refused_with_one_line(
    start_emulator, tmp_path, stream, method
):
    emulator = start_emulator(5, 50)

    run = run_tap(
        emulator_config(emulator),
        tmp_path,
        args=_with_catalog(tmp_path, _catalog((stream,), method)),
        streams=None,
    )

    assert run.returncode == 1
    errors = tap_log(run.stderr, "ERROR")
    assert len(errors) == 1 and stream in errors[0] and method in errors[0]
    assert "Traceback" not in run.stderr
    assert emulator.state.stats["requests"] == 0
    assert not [m for m in run.messages if m["type"] in {"RECORD", "ACTIVATE_VERSION"}]


# 3. Campaign recipients: no reliance on `updated_at` moving with the counters


def test_receipts_that_move_counters_but_not_updated_at_are_read(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"campaigns": 12, "recipients": 1200}, days=200)
    dataset = emulator.state.dataset
    streams = ("campaigns", "campaign_recipients")
    first = run_tap(emulator_config(emulator), tmp_path, streams=streams)
    # Receipts arrive; the API moves the counters but (undocumented either way) not `updated_at`.
    campaigns = {c["id"]: dict(c) for c in dataset.campaign_data.campaigns}
    dataset.add_activity(hours=30, receipts=300)
    for campaign in dataset.campaign_data.campaigns:
        if campaign["id"] in campaigns:
            campaign["updated_at"] = campaigns[campaign["id"]]["updated_at"]

    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=streams)

    # Before: 154 recipient rows stale, every rerun.
    assert second.returncode == 0, second.stderr[-2000:]
    assert_tables_equal(upsert(first, second, tables=streams), dataset, ("campaign_recipients",))


def test_campaigns_finished_long_ago_still_cost_nothing(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"campaigns": 40, "recipients": 800}, days=200)
    dataset = emulator.state.dataset
    streams = ("campaigns", "campaign_recipients")
    first = run_tap(emulator_config(emulator), tmp_path, streams=streams)
    dataset.add_activity(hours=1)
    emulator.state.stats.clear()
    emulator.state.requests.clear()

    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=streams)

    assert second.returncode == 0
    bookmark = parse_timestamp(_bookmark(first, "campaign_recipients"))
    assert bookmark is not None
    horizon = rfc3339(bookmark - dt.timedelta(hours=72))
    cutoff = rfc3339(bookmark - dt.timedelta(hours=72) - dt.timedelta(days=30))
    expected = {
        c["id"]
        for c in dataset.campaign_data.campaigns
        if c["status"] not in {"completed", "cancelled", "failed"}
        or (c.get("completed_at") or c.get("started_at") or c["created_at"]) >= cutoff
        or max(c["updated_at"], c.get("started_at") or "") >= horizon
    }
    read = {path.split("/")[-2] for path in emulator.state.requests if "/recipients" in path}
    assert read == expected
    assert len(read) < len(dataset.campaign_data.campaigns)


# 4. Clocks


def test_without_a_date_header_the_local_clock_caps_the_bookmark(start_emulator, tmp_path):
    # The API's clock where this machine's is (the emulator's own starts a month earlier).
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    emulator = start_emulator(10, 100, account={"contacts": 50, "now": now}, shape={"date_header": False})
    dataset = emulator.state.dataset
    # One contact is stamped in the future.
    dataset.account.contacts.rows[4]["updated_at"] = "2099-03-01T00:00:00Z"

    run = run_tap(emulator_config(emulator), tmp_path, streams=("contacts",))

    assert run.returncode == 0
    warnings = tap_log(run.stderr, "WARNING")
    assert sum("sent no Date header" in w for w in warnings) == 1
    bookmark = parse_timestamp(_bookmark(run, "contacts"))
    assert bookmark is not None and bookmark <= dt.datetime.now(dt.timezone.utc)
    # The next run still sees ten real changes (before: 0 of 10).
    changed = dataset.account.change("contacts", update=10)["updated"]
    rerun = run_tap(emulator_config(emulator), tmp_path, state=run.last_state, streams=("contacts",))
    assert set(changed) <= set(rerun.ids("contacts"))


def test_a_bookmark_later_than_the_apis_clock_reads_from_the_clock_minus_lookback(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 80})
    dataset = emulator.state.dataset
    changed = dataset.account.change("contacts", update=10)["updated"]
    state = {
        "bookmarks": {
            "contacts": {"replication_key": "updated_at", "replication_key_value": "2027-06-01T00:00:00Z"}
        }
    }

    run = run_tap(emulator_config(emulator), tmp_path, state=state, streams=("contacts",))

    # Before: accepted silently, 0 of 10 changes emitted.
    assert run.returncode == 0
    assert set(changed) <= set(run.ids("contacts"))
    warnings = [w for w in tap_log(run.stderr, "WARNING") if "later than the API's clock" in w]
    assert len(warnings) == 1 and "2027-06-01T00:00:00Z" in warnings[0]
    assert _bookmark(run, "contacts") <= rfc3339(dataset.now)


# 5. State files as Meltano prints them


@pytest.mark.parametrize("wrapped_as", ["meltano state get", "the tap's STATE line"])
def test_a_state_as_meltano_state_get_or_the_tap_prints_it_is_read(start_emulator, tmp_path, wrapped_as):
    emulator = start_emulator(10, 300)
    first = run_tap(emulator_config(emulator), tmp_path)
    emulator.state.stats.clear()
    state = (
        {"singer_state": first.last_state}
        if wrapped_as == "meltano state get"
        else [m for m in first.messages if m["type"] == "STATE"][-1]
    )

    rerun = run_tap(emulator_config(emulator), tmp_path, state=state)

    assert rerun.returncode == 0
    # Before: read as no bookmarks, a full read without a word.
    assert "Reading all messages" not in rerun.stderr
    assert emulator.state.stats["requests:messages"] < len(emulator.state.dataset.conversations)
    assert rerun.last_state["bookmarks"]["messages"]["replication_key_value"]


# 6. Secrets of any type stay out of the log


@pytest.mark.parametrize(
    "secrets",
    [{"auth_token": 987654321012}, {"bearer_token": ["x-987654321012"]}, {"auth_token": {"v": 987654321012}}],
)
def test_a_secret_of_the_wrong_type_is_not_echoed(start_emulator, tmp_path, secrets):
    emulator = start_emulator(2, 10)

    run = run_tap({**emulator_config(emulator), **secrets}, tmp_path)

    assert run.returncode == 1
    assert "987654321012" not in run.stderr
    name = next(iter(secrets))
    assert f"{name} must be a string (the value given is not shown: it is a secret)" in tap_log(
        run.stderr, "ERROR"
    )


# 7. Proxies


def _refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_proxy_that_refuses_is_named_and_never_blamed_on_api_url(start_emulator, tmp_path):
    emulator = start_emulator(2, 10)
    port = _refusing_port()

    run = run_tap(
        emulator_config(emulator, max_retry_seconds=2),
        tmp_path,
        env={"HTTP_PROXY": f"http://127.0.0.1:{port}"},
    )

    assert run.returncode == 1
    errors = tap_log(run.stderr, "ERROR")
    assert len(errors) == 1
    assert f"proxy 127.0.0.1:{port}" in errors[0] and "api_url" not in errors[0]
    assert "Retrying" in run.stderr  # a proxy may not be up yet: retried like any transient fault


def test_a_proxy_that_comes_up_late_is_retried(start_emulator, tmp_path):
    emulator = start_emulator(3, 30)
    port = _refusing_port()
    proxies: list[CountingProxy] = []

    def come_up() -> None:
        proxies.append(CountingProxy(port))
        proxies[0].serve_forever()

    timer = threading.Timer(1.5, come_up)
    timer.start()
    try:
        run = run_tap(emulator_config(emulator), tmp_path, env={"HTTP_PROXY": f"http://127.0.0.1:{port}"})
    finally:
        timer.cancel()
        timer.join(5)
        for proxy in proxies:
            proxy.shutdown()
            proxy.server_close()

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records["messages"]) == 30
    assert proxies and proxies[0].relayed == emulator.state.stats["requests"]


# 8. 429 bodies and older docs' values


def test_a_429_without_retry_after_honours_the_documented_body(start_emulator, tmp_path):
    emulator = start_emulator(2, 20)
    emulator.state.faults = Faults(script=["429-body"])

    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0
    waits = [line for line in tap_log(run.stderr, "WARNING") if line.startswith("Retrying in")]
    assert len(waits) == 1
    assert 3.0 <= float(waits[0].split()[2].rstrip("s")) <= 4.0  # details.retryAfter 3, plus jitter


def test_older_docs_values_are_known_and_described(start_emulator, tmp_path):
    emulator = start_emulator(5, 100, account={"campaigns": 8, "templates_per_channel": 3})
    dataset = emulator.state.dataset
    dataset.campaign_data.campaigns.rows[0]["status"] = "running"
    next(iter(dataset.account.templates.values())).rows[0]["status"] = "PENDING"
    dataset.conversations[0].messages[0]["status"] = "queued"

    run = run_tap(emulator_config(emulator), tmp_path, streams=None)

    assert run.returncode == 0
    assert not tap_log(run.stderr, "WARNING")
    assert not [r for records in run.records.values() for r in records if r.get("malformed_fields")]
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    assert "`running`" in schemas["campaigns"]["properties"]["status"]["description"]
    assert "`PENDING`" in schemas["templates"]["properties"]["status"]["description"]
    assert "`queued`" in schemas["messages"]["properties"]["status"]["description"]


# 9. A log a person can read


def test_a_run_logs_the_taps_own_lines_not_a_metric_per_request(start_emulator, tmp_path):
    emulator = start_emulator(20, 600)

    quiet = run_tap(emulator_config(emulator), tmp_path)
    loud = run_tap(emulator_config(emulator, metrics_log_level="INFO"), tmp_path)

    assert quiet.returncode == loud.returncode == 0
    assert "METRIC" not in quiet.stderr
    assert loud.stderr.count("METRIC") > emulator.state.stats["requests"] / 2
    assert "Sync completed" in quiet.stderr


def test_each_incremental_stream_says_where_it_reads_from_once_and_nothing_contradicts_it(
    start_emulator, tmp_path
):
    # The SDK's own line named start_date as the bookmark ("with bookmark value: 2026-...") beside the
    # tap's "(bookmark none, ...)", and for contacts, which start_date does not limit, beside "Reading all".
    emulator = start_emulator(20, 600, account={"contacts": 30, "campaigns": 3, "recipients": 30})
    start = rfc3339(emulator.state.dataset.now - dt.timedelta(days=3))

    run = run_tap(emulator_config(emulator, start_date=start), tmp_path, streams=("contacts", "messages"))

    assert run.returncode == 0, run.stderr[-2000:]
    assert "bookmark value" not in run.stderr
    reading = [line for line in tap_log(run.stderr, "INFO") if line.startswith("Reading")]
    assert reading == [
        "Reading all contacts: no bookmark and start_date does not limit contacts",
        f"Reading messages from {start} (bookmark none, lookback_hours 72, start_date {start})",
    ]
