"""Resumable first syncs: a run killed part-way resumes from its last STATE, reading only what it has to.

Each test runs the real CLI against the emulator: an uninterrupted first sync for the
reference request count, then, on the same data, a first sync killed -9 once a share of
its records is out, an hour of activity, and a rerun from the last STATE the killed run
wrote. The two runs together must hold exactly the emulator's data.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import signal
import time

import pytest
from meltano.core.utils import merge

from tests.expected_output import assert_tables_equal, upsert
from tests.tap_runner import emulator_config, records_out, run_tap, run_tap_until, tap_log
from vobiz_emulator.server import Faults, Handler

RECIPIENT_TABLES = ("campaigns", "campaign_recipients")


def _live(entry: dict) -> bool:
    """Whether a stream's state entry holds a resume position (a cleared one has every key null)."""
    return bool((entry.get("resume") or {}).get("clock"))


def _resume_states(run) -> list[dict]:
    return [s for s in run.states if any(_live(e) for e in s.get("bookmarks", {}).values())]


def _assert_small(run) -> None:
    sizes = [len(json.dumps(state)) for state in run.states]
    assert max(sizes) < 1024, max(sizes)


@pytest.mark.parametrize(
    ("share", "at_most"),
    [
        pytest.param(0.10, 1.05, id="10%"),
        pytest.param(0.50, 0.65, id="50%"),
        pytest.param(0.90, 0.15, id="90%"),
        pytest.param(0.99, 0.15, id="99%"),
    ],
)
def test_a_first_sync_killed_part_way_through_its_messages_resumes_where_it_stopped(
    start_emulator, tmp_path, share, at_most
):
    emulator = start_emulator(600, 16000, days=60)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, state_interval_seconds=0)
    full = run_tap(config, tmp_path)
    assert full.returncode == 0, full.stderr[-2000:]
    full_requests = emulator.state.stats["requests:messages"]
    emulator.state.stats.clear()
    emulator.state.faults = Faults(latency_ms=1)

    killed = run_tap_until(config, tmp_path, records_out("messages", int(share * len(full.ids("messages")))))
    assert killed.returncode == -9
    resume = _resume_states(killed)[-1]["bookmarks"]["messages"]["resume"]
    finished = {r["conversation_id"] for r in killed.records["messages"]}
    activity = dataset.add_activity(hours=1, new_conversations=5, new_messages=200, status_changes=60)
    emulator.state.stats.clear()

    resumed = run_tap(config, tmp_path, state=_resume_states(killed)[-1])

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_tables_equal(upsert(killed, resumed), dataset)
    resumed_requests = emulator.state.stats["requests:messages"]
    print(f"messages killed at {share:.0%}: resumed {resumed_requests} of {full_requests} requests")
    assert resumed_requests <= at_most * full_requests, (resumed_requests, full_requests)
    assert "Resuming the messages of an interrupted run" in resumed.stderr
    # Messages created since in conversations the killed run had finished are in the rerun.
    new = set(activity["new_messages"])
    landed = {c.id for c in dataset.conversations for m in c.messages if m["id"] in new}
    if share >= 0.99:
        assert landed & finished
    assert set(activity["new_messages"]) <= set(resumed.ids("messages"))
    # The bookmark follows the rule of any run; the resume position is gone.
    entry = resumed.last_state["bookmarks"]["messages"]
    assert not _live(entry)  # cleared, every key null, so that a merge of states clears it too
    newest = max(r["created_at"] for run in (killed, resumed) for r in run.records["messages"])
    assert entry["replication_key_value"] == min(newest, activity["now"])
    assert resume["after"] is not None
    _assert_small(killed)
    _assert_small(resumed)


def test_a_run_killed_while_reading_the_conversation_list_starts_the_messages_over(start_emulator, tmp_path):
    emulator = start_emulator(300, 6000, days=30, conversations_page_size=50)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, state_interval_seconds=0)
    emulator.state.faults = Faults(latency_ms=5)

    killed = run_tap_until(config, tmp_path, records_out("conversations", 120))
    assert killed.returncode == -9
    assert not _resume_states(killed)
    dataset.add_activity(hours=1, new_conversations=3, new_messages=100, status_changes=30)

    resumed = run_tap(config, tmp_path, state=killed.states[-1] if killed.states else None)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_tables_equal(upsert(killed, resumed), dataset)


def test_a_state_without_a_resume_position_reads_as_an_incremental_run(start_emulator, tmp_path):
    emulator = start_emulator(200, 5000, days=30)
    dataset = emulator.state.dataset
    config = emulator_config(emulator)
    first = run_tap(config, tmp_path)
    # What the previous release wrote: a bookmark per stream and nothing else.
    state = {
        "bookmarks": {
            stream: {k: v for k, v in entry.items() if k in {"replication_key", "replication_key_value"}}
            for stream, entry in first.last_state["bookmarks"].items()
        }
    }
    dataset.add_activity(hours=2, new_conversations=2, new_messages=60, status_changes=20)
    emulator.state.stats.clear()

    rerun = run_tap(config, tmp_path, state=state)

    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Resuming" not in rerun.stderr
    assert emulator.state.stats["requests:messages"] < 0.3 * len(dataset.conversations)
    assert_tables_equal(upsert(first, rerun), dataset)


def test_a_resume_position_that_cannot_be_used_is_one_warning_and_a_full_read(start_emulator, tmp_path):
    emulator = start_emulator(50, 1000, days=10)
    config = emulator_config(emulator)
    state = {"bookmarks": {"messages": {"resume": {"after": "nope", "clock": "2026-01-01T00:00:00Z"}}}}

    run = run_tap(config, tmp_path, state=state)

    assert run.returncode == 0, run.stderr[-2000:]
    warnings = [line for line in run.stderr.splitlines() if "Ignoring the messages resume position" in line]
    assert len(warnings) == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert_tables_equal(upsert(run), emulator.state.dataset)


@pytest.mark.parametrize("share", [0.5, 0.9])
def test_a_first_sync_killed_part_way_through_the_recipients_resumes_where_it_stopped(
    start_emulator, tmp_path, share
):
    emulator = start_emulator(20, 200, days=120, account={"campaigns": 120, "recipients": 4800})
    dataset = emulator.state.dataset
    config = emulator_config(emulator, state_interval_seconds=0)
    full = run_tap(config, tmp_path, streams=RECIPIENT_TABLES)
    assert full.returncode == 0, full.stderr[-2000:]
    full_requests = emulator.state.stats["requests:campaign_recipients"]
    emulator.state.stats.clear()
    emulator.state.faults = Faults(latency_ms=1)

    total = len(full.ids("campaign_recipients"))
    killed = run_tap_until(
        config, tmp_path, records_out("campaign_recipients", int(share * total)), streams=RECIPIENT_TABLES
    )
    assert killed.returncode == -9
    state = _resume_states(killed)[-1]
    # Receipts of campaigns sent in the last 30 days (WhatsApp gives up on a message after that).
    dataset.add_activity(hours=1, new_campaigns=1, receipts=60, receipt_days=30)
    emulator.state.stats.clear()

    resumed = run_tap(config, tmp_path, state=state, streams=RECIPIENT_TABLES)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_tables_equal(upsert(killed, resumed, tables=RECIPIENT_TABLES), dataset, RECIPIENT_TABLES)
    resumed_requests = emulator.state.stats["requests:campaign_recipients"]
    # What any rerun reads besides the campaigns not finished: those that can still change
    # (not completed, failed or cancelled 30 days before the killed run's clock - 72 h), one
    # page each here; computed from the emulator's rows.
    clock = dt.datetime.fromisoformat(state["bookmarks"]["campaign_recipients"]["resume"]["clock"])
    cutoff = (clock - dt.timedelta(hours=72, days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    live = [
        c
        for c in dataset.campaign_data.export()["campaigns"]
        if c["status"] not in {"completed", "failed", "cancelled"}
        or (c.get("completed_at") or c.get("started_at") or c["created_at"]) >= cutoff
    ]
    bound = (1 - share) * full_requests + len(live) + 0.05 * full_requests
    print(
        f"recipients killed at {share:.0%}: resumed {resumed_requests} of {full_requests} ({len(live)} live)"
    )
    assert resumed_requests <= bound, (resumed_requests, full_requests, len(live))
    assert not _live(resumed.last_state["bookmarks"]["campaign_recipients"])
    # One table version across both runs: the resumed run's ACTIVATE_VERSION keeps the killed run's rows.
    versions = {
        m["version"]
        for run in (killed, resumed)
        for m in run.messages
        if m["type"] == "RECORD" and m["stream"] == "campaign_recipients"
    }
    assert len(versions) == 1
    assert [
        m["version"]
        for m in resumed.messages
        if m["type"] == "ACTIVATE_VERSION" and m["stream"] == "campaign_recipients"
    ] == list(versions)
    _assert_small(killed)
    _assert_small(resumed)


def test_two_sigterms_end_the_run_once_with_a_resumable_state_and_no_traceback(start_emulator, tmp_path):
    # A scheduler stopping `meltano run` signals the whole process group, and Meltano then
    # terminates the tap too: the tap gets SIGTERM twice.
    emulator = start_emulator(300, 8000, days=30)
    emulator.state.faults = Faults(latency_ms=20)
    config = emulator_config(emulator, state_interval_seconds=0)

    def terminate_twice(process) -> None:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)

    run = run_tap_until(
        config,
        tmp_path,
        lambda messages: sum(m["type"] == "RECORD" and m["stream"] == "messages" for m in messages) >= 2000,
        on_stop=terminate_twice,
    )

    assert run.returncode == 128 + signal.SIGTERM, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr[-2000:]
    assert run.messages[-1]["type"] == "STATE"
    assert _live(run.last_state["bookmarks"]["messages"])


def test_ctrl_c_says_the_run_was_interrupted_and_its_last_state_resumes_from_the_last_conversation_read(
    start_emulator, tmp_path
):
    # Before: "Sync FAILED: ..." with nothing saying why, and the STATE it ended with kept only the
    # position state_interval_seconds had let through (here none), so the rerun read everything.
    emulator = start_emulator(300, 8000, days=30)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, state_interval_seconds=3600)
    full = run_tap(config, tmp_path)
    assert full.returncode == 0, full.stderr[-2000:]
    full_requests = emulator.state.stats["requests:messages"]
    emulator.state.faults = Faults(latency_ms=5)

    stopped = run_tap_until(
        config, tmp_path, records_out("messages", 4000), on_stop=lambda p: p.send_signal(signal.SIGINT)
    )

    assert stopped.returncode == 128 + signal.SIGINT, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    [line] = [line for line in tap_log(stopped.stderr, "WARNING") if line.startswith("Sync interrupted")]
    assert line.startswith("Sync interrupted by SIGINT: ")
    assert line.endswith(". A rerun from the last STATE it wrote resumes where it stopped")
    assert stopped.messages[-1]["type"] == "STATE" and _live(stopped.last_state["bookmarks"]["messages"])
    emulator.state.faults = Faults()
    emulator.state.stats.clear()

    resumed = run_tap(config, tmp_path, state=stopped.last_state)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_tables_equal(upsert(stopped, resumed), dataset)
    assert "Resuming the messages of an interrupted run" in resumed.stderr
    assert emulator.state.stats["requests:messages"] <= 0.75 * full_requests, full_requests


def test_ctrl_c_on_meltano_run_sigint_then_sigterm_at_once_ends_the_tap_once_without_a_traceback(
    start_emulator, tmp_path
):
    # Ctrl-C on `meltano run` sends SIGINT to the whole group, and Meltano its SIGTERM a few
    # milliseconds later. Before: "OSError: Signal 15 ignored due to race condition" and its traceback
    # (the SIGTERM caught before the handler of the SIGINT had set SIG_IGN), 4 runs in 4.
    emulator = start_emulator(300, 8000, days=30)
    emulator.state.faults = Faults(latency_ms=20)

    def ctrl_c_on_meltano_run(process) -> None:
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)

    run = run_tap_until(
        emulator_config(emulator, state_interval_seconds=0),
        tmp_path,
        records_out("messages", 2000),
        on_stop=ctrl_c_on_meltano_run,
    )

    assert run.returncode == 128 + signal.SIGINT, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "race condition" not in run.stderr, run.stderr[-2000:]
    assert [line for line in tap_log(run.stderr) if line.startswith("Sync interrupted")] != []
    assert run.messages[-1]["type"] == "STATE"
    assert _live(run.last_state["bookmarks"]["messages"])


def _first_page_only(page_of):
    """A page-numbered list whose pages after the first come back empty (`total` says more)."""

    def page(*args, **kwargs):
        served = page_of(*args, **kwargs)
        if served["page"] > 1:
            served["items"] = []
        return served

    return page


def test_no_resume_position_is_kept_while_the_campaign_list_is_not_known_complete(start_emulator, tmp_path):
    # Campaigns that slipped between the list's pages were never read: were a position kept, a
    # rerun would count the slipped ones before it as done.
    emulator = start_emulator(10, 100, account={"campaigns": 250, "recipients": 2500})
    campaigns = emulator.state.dataset.campaign_data.campaigns
    campaigns.page = _first_page_only(campaigns.page)  # type: ignore[method-assign]

    run = run_tap(emulator_config(emulator, state_interval_seconds=0), tmp_path, streams=RECIPIENT_TABLES)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records["campaign_recipients"]  # the campaigns of page 1 were read
    assert not [s for s in run.states if _live(s["bookmarks"].get("campaign_recipients", {}))]


def test_no_resume_position_is_kept_while_the_conversation_list_is_not_known_complete(
    start_emulator, tmp_path, monkeypatch
):
    emulator = start_emulator(120, 1200, conversations_page_size=50, shape={"conversations": "pages"})
    monkeypatch.setattr(Handler, "_conversations_page", _first_page_only(Handler._conversations_page))

    run = run_tap(emulator_config(emulator, state_interval_seconds=0), tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records["messages"]
    assert not [s for s in run.states if _live(s["bookmarks"].get("messages", {}))]


# Exact under merges, changed settings and unsettled lists (issue 28, items 1, 4 and 8)


def _merged(stored: dict, *states: dict) -> dict:
    """The state Meltano stores when each STATE of a run is merged onto the stored one (`--full-refresh`
    runs, `--state-strategy merge`): a deep merge, in which a key left out is never removed."""
    result = copy.deepcopy(stored)
    for state in states:
        merge(copy.deepcopy(state), result)
    return result


def test_a_completed_fan_out_clears_its_resume_position_through_a_merge(start_emulator, tmp_path):
    # 1. A full refresh writes resume positions while it runs; merged onto the stored state, the
    # one its last STATE left out stayed, and every later run "resumed" from it.
    emulator = start_emulator(200, 5000, days=30)
    dataset = emulator.state.dataset
    config = emulator_config(emulator, state_interval_seconds=0)
    first = run_tap(config, tmp_path)
    emulator.state.faults = Faults(latency_ms=1)
    refresh = run_tap(config, tmp_path)  # `meltano run --full-refresh`: no state in, STATEs merged
    assert _resume_states(refresh), "the refresh wrote no resume position: nothing to test"
    stored = _merged(first.last_state, *refresh.states)

    # Before: {"after": [...], "clock": ...} stayed; the next run said "Resuming the messages of an
    # interrupted run" and read finished conversations from the refresh's clock, every run.
    assert not _live(stored["bookmarks"]["messages"])
    dataset.add_activity(hours=2, new_messages=80, status_changes=40)
    emulator.state.stats.clear()
    rerun = run_tap(config, tmp_path, state=stored)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Resuming" not in rerun.stderr
    assert_tables_equal(upsert(first, refresh, rerun), dataset)


def test_a_resume_position_older_than_the_bookmark_is_ignored(start_emulator, tmp_path):
    emulator = start_emulator(200, 5000, days=30)
    config = emulator_config(emulator, state_interval_seconds=0)
    killed = run_tap_until(config, tmp_path, records_out("messages", 2500))
    stale = _resume_states(killed)[-1]["bookmarks"]["messages"]["resume"]
    done = run_tap(config, tmp_path, state=_resume_states(killed)[-1])
    emulator.state.dataset.add_activity(hours=30, new_messages=100, status_changes=40)
    later = run_tap(config, tmp_path, state=done.last_state)
    # A state merged by hand, or by a tool that drops nulls: the first run's position beside a newer bookmark.
    state = copy.deepcopy(later.last_state)
    state["bookmarks"]["messages"]["resume"] = stale

    rerun = run_tap(config, tmp_path, state=state)

    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Resuming" not in rerun.stderr
    assert "older than the messages bookmark" in rerun.stderr


@pytest.mark.parametrize(
    ("changed", "records"),
    [({"emit_activate_version_messages": False}, 1000), ({"start_date": "2026-10-01T00:00:00Z"}, 300)],
    ids=["emit_activate_version_messages", "start_date"],
)
def test_a_resume_after_a_setting_that_decides_the_version_or_horizon_changed_is_a_fresh_run(
    start_emulator, tmp_path, changed, records
):
    # 4. Killed while it kept no table version (or read from start_date); rerun with the default.
    emulator = start_emulator(20, 200, days=120, account={"campaigns": 60, "recipients": 2000})
    dataset = emulator.state.dataset
    before = emulator_config(emulator, state_interval_seconds=0, **changed)
    emulator.state.faults = Faults(latency_ms=1)
    killed = run_tap_until(
        before, tmp_path, records_out("campaign_recipients", records), streams=RECIPIENT_TABLES
    )
    state = _resume_states(killed)[-1]

    resumed = run_tap(
        emulator_config(emulator, state_interval_seconds=0), tmp_path, state=state, streams=RECIPIENT_TABLES
    )

    # Before: the resumed run started a new table version, emitted only what its plan read, and
    # its ACTIVATE_VERSION deleted the killed run's rows (1,044 and 2,000 of 2,000 here).
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_tables_equal(upsert(killed, resumed, tables=RECIPIENT_TABLES), dataset, RECIPIENT_TABLES)
    assert f"not resumed: {next(iter(changed))} changed" in resumed.stderr


def test_a_position_never_passes_a_campaign_whose_recipients_did_not_settle(start_emulator, tmp_path):
    # 8. One campaign's recipient list keeps moving (its later pages never come): the run keeps the
    # bookmark, but positions were written past that campaign, and the next run took it for done.
    emulator = start_emulator(10, 100, days=60, account={"campaigns": 30, "recipients": 3000})
    dataset = emulator.state.dataset
    data = dataset.campaign_data
    stuck_id = max(data.recipients, key=lambda campaign_id: len(data.recipients[campaign_id]))
    assert len(data.recipients[stuck_id]) > 100
    stuck = data.recipients[stuck_id]
    original = stuck.page

    def first_page_only(*args, **kwargs):
        served = original(*args, **kwargs)
        if served["page"] > 1:
            served["items"] = []
        return served

    stuck.page = first_page_only  # type: ignore[method-assign]
    config = emulator_config(emulator, state_interval_seconds=0)
    first = run_tap(config, tmp_path, streams=RECIPIENT_TABLES)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "3 readings" in first.stderr
    stuck.page = original  # type: ignore[method-assign]

    second = run_tap(config, tmp_path, state=first.last_state, streams=RECIPIENT_TABLES)

    # Before: the rows of the stuck campaign's later pages were never extracted, with no warning.
    assert second.returncode == 0, second.stderr[-2000:]
    assert_tables_equal(upsert(first, second, tables=RECIPIENT_TABLES), dataset, RECIPIENT_TABLES)


# Quiet campaigns' fingerprints describe only what was read (issue 28, items 2 and 3)

from tap_vobiz.campaign_streams import bucket  # noqa: E402
from tap_vobiz.resume import order_key  # noqa: E402
from tests.expected_output import expected_tables  # noqa: E402
from vobiz_emulator.account_data import rfc3339  # noqa: E402
from vobiz_emulator.campaign_data import FINISHED, counters  # noqa: E402


def _late_receipt(data, campaign: dict, moment: dt.datetime) -> str | None:
    """A receipt for one of a campaign's recipients (sent -> delivered, delivered -> read) at `moment`:
    its counters follow, its `updated_at` does not (the docs promise only that the counters move).
    The id of the recipient row that changed (None when none could)."""
    rows = data.recipients[campaign["id"]].rows
    for row in rows:
        if row["status"] in {"sent", "delivered"}:
            status = "read" if row["status"] == "delivered" else "delivered"
            row["status"] = status
            row[f"{status}_at"] = row["updated_at"] = rfc3339(moment)
            campaign.update(counters(rows))
            return row["id"]
    return None


def _quiet(campaign: dict, cutoff: dt.datetime) -> bool:
    finished = campaign.get("completed_at") or campaign.get("started_at") or campaign["created_at"]
    return campaign["status"] in FINISHED and finished < rfc3339(cutoff)


def _position(run) -> tuple[str, str]:
    after = _resume_states(run)[-1]["bookmarks"]["campaign_recipients"]["resume"]["after"]
    return (after[0], after[1])


def test_a_resumed_run_killed_before_its_re_reads_keeps_the_fingerprints_of_the_first(
    start_emulator, tmp_path
):
    # 2. The resumed run wrote, from its first STATE, the fingerprints of the counters as *it* listed
    # them; killed before re-reading the campaign whose counters had moved, the third run found nothing
    # moved: one recipient left `delivered` that Vobiz shows `read`, for good.
    emulator = start_emulator(20, 200, days=120, account={"campaigns": 120, "recipients": 4800})
    dataset = emulator.state.dataset
    data = dataset.campaign_data
    config = emulator_config(emulator, state_interval_seconds=0)
    emulator.state.faults = Faults(latency_ms=1)
    first = run_tap_until(
        config, tmp_path, records_out("campaign_recipients", 2400), streams=RECIPIENT_TABLES
    )
    assert first.returncode == -9
    state = _resume_states(first)[-1]
    position = _position(first)
    clock = dt.datetime.fromisoformat(state["bookmarks"]["campaign_recipients"]["resume"]["clock"])
    # A late receipt, an hour on, for the last quiet campaign the killed run had finished that comes
    # after another of its bucket (the resumed run re-reads the quiet campaigns of that bucket).
    dataset.now += dt.timedelta(hours=1)
    cutoff = clock - dt.timedelta(hours=72, days=30)
    finished = sorted(
        (c for c in data.campaigns if _quiet(c, cutoff) and order_key(c, "created_at") <= position),
        key=lambda c: order_key(c, "created_at"),
    )
    late = campaign = None
    for number, candidate in reversed(list(enumerate(finished))):
        if any(bucket(c) == bucket(candidate) for c in finished[:number]) and (
            late := _late_receipt(data, candidate, dataset.now - dt.timedelta(minutes=30))
        ):
            campaign = candidate
            break
    assert late is not None and campaign is not None
    # The resumed run (one list at a time) re-reads the quiet campaigns of that bucket, writing a STATE
    # after each; it is killed once it asks for that campaign's recipients, before they come back.
    running: list = []
    served = data.recipients[campaign["id"]].page

    def kill_then_serve(*args, **kwargs):
        if running:
            time.sleep(0.5)  # what the run wrote before asking is out
            running.pop().send_signal(signal.SIGKILL)
        return served(*args, **kwargs)

    data.recipients[campaign["id"]].page = kill_then_serve
    second = run_tap_until(
        emulator_config(emulator, state_interval_seconds=0, max_workers=1),
        tmp_path,
        lambda messages: True,
        state=state,
        on_stop=running.append,  # at its first message: the kill comes from the emulator
        streams=RECIPIENT_TABLES,
    )
    data.recipients[campaign["id"]].page = served
    assert second.returncode == -9
    assert late not in second.ids("campaign_recipients"), "killed too late: nothing to test"
    assert _position(second) == position  # still re-reading what the first run had finished
    emulator.state.faults = Faults()

    third = run_tap(config, tmp_path, state=_resume_states(second)[-1], streams=RECIPIENT_TABLES)

    assert third.returncode == 0, third.stderr[-2000:]
    tables = ("campaign_recipients",)  # the campaign's `updated_at` did not move: its row is not re-read
    assert_tables_equal(upsert(first, second, third, tables=tables), dataset, tables)
    assert late in third.ids("campaign_recipients")


def test_a_resume_with_a_recent_start_date_reads_the_quiet_campaigns_after_its_position(
    start_emulator, tmp_path
):
    # 3. With start_date inside lookback_hours, the killed run's fingerprints were applied to the quiet
    # campaigns after its position, which it never read: their rows updated since start_date were lost.
    emulator = start_emulator(20, 200, days=120, account={"campaigns": 120, "recipients": 4800})
    dataset = emulator.state.dataset
    data = dataset.campaign_data
    start_date = dataset.now - dt.timedelta(days=1)
    # Late receipts since start_date for the campaigns that finished long before it.
    quiet = [c for c in data.campaigns if _quiet(c, start_date - dt.timedelta(days=30))]
    late = {
        c["id"]: rid
        for n, c in enumerate(quiet)
        if (rid := _late_receipt(data, c, start_date + dt.timedelta(minutes=10 + n)))
    }
    assert len(late) >= 40
    config = emulator_config(emulator, state_interval_seconds=0, start_date=rfc3339(start_date))
    emulator.state.faults = Faults(latency_ms=1)

    killed = run_tap_until(
        config, tmp_path, records_out("campaign_recipients", len(late) // 3), streams=RECIPIENT_TABLES
    )
    assert killed.returncode == -9
    position = _position(killed)
    after = [c["id"] for c in quiet if c["id"] in late and order_key(c, "created_at") > position]
    assert after, "killed too late: nothing to test"
    emulator.state.faults = Faults()

    resumed = run_tap(config, tmp_path, state=_resume_states(killed)[-1], streams=RECIPIENT_TABLES)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = {
        row_id: row
        for row_id, row in expected_tables(dataset, ("campaign_recipients",))["campaign_recipients"].items()
        if row["updated_at"] >= rfc3339(start_date)
    }
    loaded = upsert(killed, resumed, tables=("campaign_recipients",))["campaign_recipients"]
    missing = expected.keys() - loaded.keys()
    assert not missing, f"{len(missing)} of {len(expected)} recipient rows updated since start_date missing"
    assert all({k: loaded[row_id].get(k) for k in row} == row for row_id, row in expected.items())
