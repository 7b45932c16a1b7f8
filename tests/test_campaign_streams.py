"""Campaigns, their recipients, and call logs: exact, and a rerun costs what can have changed."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter

from tap_vobiz.campaign_streams import bucket
from tap_vobiz.decoding import parse_timestamp
from tests.expected_output import assert_exact_sync, assert_tables_equal, expected_tables, upsert
from tests.tap_runner import catalog_selecting, emulator_config, run_tap, run_tap_until
from vobiz_emulator.account_data import rfc3339
from vobiz_emulator.campaign_data import FINISHED, counters
from vobiz_emulator.server import RECIPIENTS_PATH, Faults

CAMPAIGN_TABLES = ("campaigns", "campaign_recipients", "call_logs")


def _recipient_lists_read(emulator) -> Counter[str]:
    """Recipient pages requested, per campaign id."""
    return Counter(
        match.group(1)
        for path in emulator.state.requests
        if (match := RECIPIENTS_PATH.match(path.split("?")[0]))
    )


def test_full_sync_of_campaigns_recipients_and_call_logs_equals_the_emulator(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"campaigns": 21, "recipients": 3000, "call_logs": 180})
    data = emulator.state.dataset.campaign_data

    run = run_tap(emulator_config(emulator), tmp_path, streams=CAMPAIGN_TABLES)

    assert_exact_sync(run, emulator.state.dataset, CAMPAIGN_TABLES)
    # Every campaign's recipients were read, page by page as the envelope says (default 50, asked 100).
    reads = _recipient_lists_read(emulator)
    # A list of more than two pages (the rest asked for at once) has its last page asked for again.
    pages = {cid: max(1, math.ceil(len(rows) / 100)) for cid, rows in data.recipients.items()}
    assert reads == {cid: count + (count > 2) for cid, count in pages.items()}
    assert emulator.state.stats["requests:call_logs"] == math.ceil(180 / 50) + 1  # 50 a page at most
    # Every campaign status and call status is there; counters agree with the recipients loaded.
    assert {c["status"] for c in run.records["campaigns"]} == {
        "draft", "scheduled", "sending", "paused", "completed", "cancelled", "failed"
    }  # fmt: skip
    by_campaign: dict[str, list[dict]] = {}
    for row in run.records["campaign_recipients"]:
        by_campaign.setdefault(row["campaign_id"], []).append(row)
    for campaign in run.records["campaigns"]:
        assert {k: campaign[k] for k in counters([])} == counters(by_campaign.get(campaign["id"], []))
    # Recipients whose campaign_id the API omitted carry the campaign they were read under.
    omitted = [r["id"] for rows in data.recipients.values() for r in rows if "campaign_id" not in r]
    assert omitted and all(row["campaign_id"] for row in run.records["campaign_recipients"])
    missed = [c for c in run.records["call_logs"] if c["status"] == "missed"]
    assert missed and all(c["answered_at"] is None and c["duration_seconds"] == 0 for c in missed)
    failed = [r for r in run.records["campaign_recipients"] if r["status"] == "failed"]
    assert failed and all(re.fullmatch(r"13\d{4}", r["error_code"]) for r in failed)


def test_rerun_reads_only_the_campaigns_that_can_change_and_brings_every_change(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"campaigns": 60, "recipients": 4000, "call_logs": 100})
    dataset = emulator.state.dataset
    data = dataset.campaign_data
    # No receipt window: a finished campaign is quiet once it finished before the horizon.
    config = emulator_config(emulator, receipt_window_days=0)
    first = run_tap(config, tmp_path, streams=CAMPAIGN_TABLES)
    assert_exact_sync(first, dataset, CAMPAIGN_TABLES)

    # Ten days on: campaigns that finished long ago stay quiet; receipts, new campaigns, new calls.
    dataset.now += dt.timedelta(days=10)
    activity = dataset.add_activity(hours=6, new_campaigns=3, receipts=40, new_calls=15)
    assert activity["recipient_changes"] and activity["new_campaigns"] and activity["new_calls"]
    emulator.state.requests.clear()
    second = run_tap(config, tmp_path, state=first.last_state, streams=CAMPAIGN_TABLES)

    assert second.returncode == 0, second.stderr[-2000:]
    assert_tables_equal(upsert(first, second, tables=CAMPAIGN_TABLES), dataset, CAMPAIGN_TABLES)
    assert set(activity["recipient_changes"]) <= set(second.ids("campaign_recipients"))
    assert set(activity["new_campaigns"]) <= set(second.ids("campaigns"))
    assert set(activity["new_calls"]) <= set(second.ids("call_logs"))
    # Recipients were read only for campaigns not finished, or changed since the horizon.
    bookmark = parse_timestamp(first.last_state["bookmarks"]["campaign_recipients"]["replication_key_value"])
    assert bookmark is not None
    horizon = rfc3339(bookmark - dt.timedelta(hours=72))
    quiet = {
        c["id"]: c
        for c in data.campaigns
        if c["status"] in FINISHED
        and (c.get("completed_at") or c.get("started_at") or c["created_at"]) < horizon
    }
    can_change = {
        c["id"]
        for c in data.campaigns
        if c["id"] not in quiet or max(c["updated_at"], c.get("started_at") or "") >= horizon
    }
    # A quiet campaign whose counters moved: the quiet campaigns of its bucket are read once more.
    touched = {
        row["campaign_id"]
        for row in expected_tables(dataset, ("campaign_recipients",))["campaign_recipients"].values()
        if row["id"] in set(activity["recipient_changes"])
    }
    moved = {bucket(c) for campaign_id, c in quiet.items() if campaign_id in touched}
    assert moved
    assert set(_recipient_lists_read(emulator)) == can_change | {
        i for i, c in quiet.items() if bucket(c) in moved
    }
    finished_quiet = [c for i, c in quiet.items() if bucket(c) not in moved and i not in can_change]
    assert len(finished_quiet) >= 5  # quiet campaigns in buckets whose counters did not move: no request


def test_five_hundred_finished_campaigns_and_three_active_ones_cost_three_recipient_lists(
    start_emulator, tmp_path
):
    emulator = start_emulator(10, 100, account={"campaigns": 503, "recipients": 5030, "call_logs": 10})
    dataset = emulator.state.dataset
    data = dataset.campaign_data
    # Make it 500 campaigns finished 40 days ago or earlier (past the 30-day receipt window), and
    # three still sending.
    active = list(data.campaigns)[:3]
    long_ago = rfc3339(dataset.now - dt.timedelta(days=40))
    for campaign in data.campaigns:
        if campaign in active:
            campaign["status"], campaign["completed_at"] = "sending", None
        else:
            campaign["status"] = "completed"
            for name in ("started_at", "completed_at", "updated_at"):
                campaign[name] = min(campaign.get(name) or long_ago, long_ago)
    first = run_tap(emulator_config(emulator), tmp_path, streams=CAMPAIGN_TABLES)
    dataset.now += dt.timedelta(days=10)
    emulator.state.requests.clear()

    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=CAMPAIGN_TABLES)

    assert second.returncode == 0
    assert set(_recipient_lists_read(emulator)) == {c["id"] for c in active}


def test_one_campaign_of_8000_recipients_is_paged_concurrently_in_order(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"campaigns": 1, "recipients": 8_000, "call_logs": 1})
    # 60 ms a request: all 8 workers in flight however busy the machine is (20 ms once saw 7).
    emulator.state.faults = Faults(latency_ms=60)
    sequential = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=("campaign_recipients",))
    emulator.state.stats.clear()

    concurrent = run_tap(emulator_config(emulator, max_workers=8), tmp_path, streams=("campaign_recipients",))

    assert_exact_sync(concurrent, emulator.state.dataset, ("campaign_recipients",))
    assert concurrent.ids("campaign_recipients") == sequential.ids("campaign_recipients")
    assert emulator.state.stats["max_in_flight"] == 8


def test_killed_mid_recipients_and_rerun_from_the_last_state_loses_nothing(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"campaigns": 30, "recipients": 6000, "call_logs": 50})
    dataset = emulator.state.dataset
    first = run_tap(emulator_config(emulator), tmp_path, streams=CAMPAIGN_TABLES)
    dataset.now += dt.timedelta(days=3)
    dataset.add_activity(hours=6, new_campaigns=2, receipts=300, new_calls=10)

    killed = run_tap_until(
        emulator_config(emulator, max_workers=2),
        tmp_path,
        lambda messages: sum(m.get("stream") == "campaign_recipients" for m in messages) > 50,
        state=first.last_state,
        streams=CAMPAIGN_TABLES,
    )
    assert killed.returncode == -9
    rerun = run_tap(emulator_config(emulator), tmp_path, state=killed.last_state, streams=CAMPAIGN_TABLES)

    assert rerun.returncode == 0
    assert_tables_equal(upsert(first, killed, rerun, tables=CAMPAIGN_TABLES), dataset, CAMPAIGN_TABLES)
    # The kill came before the recipients stream completed: its bookmark had not moved.
    assert (
        killed.last_state["bookmarks"]["campaign_recipients"]
        == first.last_state["bookmarks"]["campaign_recipients"]
    )


def test_deselected_call_log_addresses_leave_neither_schema_nor_records(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"call_logs": 80})
    catalog = catalog_selecting(("call_logs",))
    private = {"offer_sdp", "answer_sdp", "ice_candidates"}
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "call_logs")
    for metadata in entry["metadata"]:
        if metadata["breadcrumb"][-1:] and metadata["breadcrumb"][-1] in private:
            metadata["metadata"]["selected"] = False
    (tmp_path / "deselected.json").write_text(json.dumps(catalog))

    run = run_tap(
        emulator_config(emulator),
        tmp_path,
        args=("--catalog", str(tmp_path / "deselected.json")),
        streams=None,
    )

    assert run.returncode == 0
    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA")
    assert not private & schema["properties"].keys()
    assert len(run.records["call_logs"]) == 80
    assert all(not private & record.keys() for record in run.records["call_logs"])
    assert "192.0.2." not in json.dumps(run.messages)
