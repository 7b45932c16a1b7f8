"""Progress: a long sync says how far it is, periodically, in its log, and sums up at its end."""

from __future__ import annotations

import logging
import re

from tap_vobiz.run_report import REQUESTS, RunReport, emitted
from tests.expected_output import assert_exact_sync, expected_message
from tests.tap_runner import emulator_config, run_tap, tap_log
from vobiz_emulator.server import Faults

PROGRESS = re.compile(
    r"Progress: (?P<done>[\d,]+) of (?P<total>[\d,]+) conversations' messages read \(\d+%\)"
    r"(, about \S+ left)?; (?P<conversations>[\d,]+) conversations, (?P<messages>[\d,]+) messages "
    r"emitted; (?P<requests>[\d,]+) requests; (?P<retries>[\d,]+) retries; [\d,]+ records/s; \S+ elapsed"
)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_a_slow_sync_logs_conversations_read_of_those_to_read(start_emulator, tmp_path):
    emulator = start_emulator(80, 3000, days=10)
    emulator.state.faults = Faults(latency_ms=30)

    run = run_tap(emulator_config(emulator, max_workers=2, progress_interval_seconds=0.3), tmp_path)

    assert_exact_sync(run, emulator.state.dataset)
    lines = [m.groupdict() for m in PROGRESS.finditer(run.stderr)]
    assert len(lines) >= 3, run.stderr
    assert {_number(line["total"]) for line in lines} == {80}
    done = [_number(line["done"]) for line in lines]
    assert done == sorted(done) and 0 < done[0] < 80 and done[-1] <= 80
    messages = [_number(line["messages"]) for line in lines]
    assert messages == sorted(messages) and 0 < messages[0] < 3000 and messages[-1] <= 3000
    assert all(_number(line["conversations"]) == 80 for line in lines)
    assert all(_number(line["requests"]) > 0 and line["retries"] == "0" for line in lines)


def test_rerun_progress_counts_only_the_conversations_it_reads(start_emulator, tmp_path):
    emulator = start_emulator(120, 3000, days=30)
    first = run_tap(emulator_config(emulator), tmp_path)
    emulator.state.dataset.add_activity(hours=2, new_messages=40, status_changes=10)
    emulator.state.faults = Faults(latency_ms=40)

    rerun = run_tap(
        emulator_config(emulator, max_workers=1, progress_interval_seconds=0.2),
        tmp_path,
        state=first.last_state,
    )

    totals = {_number(m["total"]) for m in PROGRESS.finditer(rerun.stderr)}
    read = len({r["conversation_id"] for r in rerun.records["messages"]})
    assert totals == {read}, rerun.stderr
    assert 10 < read < 120


def test_progress_interval_zero_logs_no_progress(start_emulator, tmp_path):
    emulator = start_emulator(30, 600)
    emulator.state.faults = Faults(latency_ms=20)

    run = run_tap(emulator_config(emulator, progress_interval_seconds=0), tmp_path)

    assert run.returncode == 0
    assert "Progress:" not in run.stderr


def test_the_first_progress_line_comes_within_seconds_then_one_per_interval(caplog):
    # Before: the first line came only after a whole interval (30 s by default) of silence.
    now = [100.0]
    report = RunReport(progress_interval=30, clock=lambda: now[0])
    report.streams = ["conversations", "messages"]
    logger = logging.getLogger("test-progress")
    caplog.set_level(logging.INFO)
    stage = "conversations' messages read"

    report.progress(logger, stage, 0, 400)  # the stage starts at 100 s
    now[0] = 104.0
    report.add(emitted("messages"), 1_000)
    report.add(REQUESTS, 24)
    report.progress(logger, stage, 10, 400)
    assert caplog.messages == []  # under 5 s since the run started
    now[0] = 106.0
    report.progress(logger, stage, 20, 400)
    now[0] = 120.0
    report.add(emitted("messages"), 4_000)
    report.add(REQUESTS, 96)
    report.progress(logger, stage, 70, 400)  # under 30 s since the first line
    now[0] = 140.0
    report.progress(logger, stage, 100, 400)
    now[0] = 150.0
    report.progress(logger, stage, 150, 400)  # under 30 s since the last line

    assert caplog.messages == [
        "Progress: 20 of 400 conversations' messages read (5%), about 1m54s left; 0 conversations, "
        "1,000 messages emitted; 24 requests; 0 retries; 167 records/s; 6s elapsed",
        "Progress: 100 of 400 conversations' messages read (25%), about 2m00s left; 0 conversations, "
        "5,000 messages emitted; 120 requests; 0 retries; 118 records/s; 40s elapsed",
    ]


def test_the_end_of_a_run_is_a_short_block_saying_what_was_set_aside_and_why_it_is_harmless(
    start_emulator, tmp_path
):
    # Before: one line of ~500 characters, every counter in it even at 0, where "51 contents that
    # are not a JSON object" read like an error.
    emulator = start_emulator(20, 600)
    dataset = emulator.state.dataset
    unparseable = sum(
        expected_message(m, c.id)["content_json"] is None for c in dataset.conversations for m in c.messages
    )
    assert unparseable > 0

    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    log = tap_log(run.stderr, "INFO")
    end = log[next(i for i, line in enumerate(log) if line.startswith("Sync completed")) :]
    assert re.fullmatch(
        rf"Sync completed: 620 records emitted from {emulator.state.stats['requests']} requests "
        r"\(0 retries\) in \d+\.\ds",
        end[0],
    ), end
    assert end[1:] == [
        "Records: 20 conversations, 600 messages",
        f"{unparseable} contents that are not a JSON object: messages kept with content as received and "
        "content_json null; nothing lost",
    ]
