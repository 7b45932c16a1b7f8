"""`tap-vobiz` reading a webhook capture: exact rows whatever Vobiz retried, WhatsApp repeated or the
order they came in; a bookmark per writer that reads a growing capture on across runs."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess

import pytest

from harness.pipeline_stack import select_streams
from tap_vobiz.capture_streams import changes, unix_time
from tests.tap_runner import TAP, TapRun, emulator_config, records_out, run_tap, run_tap_until, tap_log
from tests.webhook_capture_files import (
    ACCOUNT,
    PHONE_NUMBER_ID,
    append,
    envelope,
    line,
    status,
    status_value,
)

CAPTURE_STREAMS = ("webhook_events", "message_statuses", "call_events")
CREDENTIALS = {"auth_id": "MA_TEST0001", "auth_token": "not-used: no API stream is selected"}
# 2026-12-01T10:00:00Z and later, as WhatsApp writes them (Unix seconds).
T0 = 1796119200


def _discover(config: dict, tmp_path) -> dict:
    path = tmp_path / "discover-config.json"
    path.write_text(json.dumps(config))
    completed = subprocess.run(
        [str(TAP), "--config", str(path), "--discover"], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def _run_capture(tmp_path, capture, state: dict | None = None, streams=CAPTURE_STREAMS) -> TapRun:
    """The CLI with `webhook_capture` set and only `streams` selected."""
    config = {**CREDENTIALS, "webhook_capture": str(capture)}
    catalog = tmp_path / "capture-catalog.json"
    catalog.write_text(json.dumps(select_streams(_discover(config, tmp_path), streams)))
    return run_tap(config, tmp_path, state=state, args=("--catalog", str(catalog)))


def _at(seconds: int) -> str:
    """WhatsApp's time as the tap writes it."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def test_without_webhook_capture_the_capture_streams_are_not_offered(tmp_path):
    names = {entry["tap_stream_id"] for entry in _discover(CREDENTIALS, tmp_path)["streams"]}
    with_capture = _discover({**CREDENTIALS, "webhook_capture": str(tmp_path)}, tmp_path)

    assert names.isdisjoint(CAPTURE_STREAMS)
    assert {entry["tap_stream_id"] for entry in with_capture["streams"]} == names | set(CAPTURE_STREAMS)


def test_retries_repeats_and_reordering_give_each_status_once(tmp_path):
    capture = tmp_path / "capture"
    sent = envelope("message.status", status_value(status("wamid.A", "sent", T0)), event_id="ev-sent-A")
    read_b = envelope(
        "message.status", status_value(status("wamid.B", "read", T0 + 300)), event_id="ev-read-B", bare=True
    )
    failed = status(
        "wamid.C",
        "failed",
        T0 + 5,
        errors=[{"code": 131049, "title": "Not delivered", "message": "Not delivered"}],
    )
    two = envelope(
        "message.status",
        status_value(
            status(
                "wamid.A",
                "delivered",
                T0 + 60,
                conversation={"id": "conv-1", "origin": {"type": "utility"}},
                pricing={"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"},
            ),
            failed,
        ),
        event_id="ev-two",
    )
    inbound = envelope(
        "message.inbound", {"messages": [{"id": "wamid.IN", "type": "text"}]}, event_id="ev-in"
    )
    # Writer 1: A read... B's read comes before its sent (no order is promised); Vobiz retries
    # ev-sent-A (on writer 2 too: another receiver behind the load balancer took the retry);
    # WhatsApp repeats B's read under a new event_id.
    append(capture, "w1", 1, line(read_b), line(sent), line(two), line(inbound), line(sent))
    append(
        capture,
        "w2",
        1,
        line(sent),
        line({**read_b, "event_id": "ev-read-B-again"}),
        line(envelope("message.status", status_value(status("wamid.B", "sent", T0 + 200)), event_id="ev-B")),
    )

    run = _run_capture(tmp_path, capture)

    assert run.returncode == 0, run.stderr
    statuses = {row["id"]: row for row in run.records["message_statuses"]}
    assert sorted(statuses) == sorted(
        [
            f"wamid.A|sent|{_at(T0)}",
            f"wamid.A|delivered|{_at(T0 + 60)}",
            f"wamid.C|failed|{_at(T0 + 5)}",
            f"wamid.B|read|{_at(T0 + 300)}",
            f"wamid.B|sent|{_at(T0 + 200)}",
        ]
    )
    assert len(run.records["message_statuses"]) == 5
    assert statuses[f"wamid.A|delivered|{_at(T0 + 60)}"] == {
        "id": f"wamid.A|delivered|{_at(T0 + 60)}",
        "wamid": "wamid.A",
        "status": "delivered",
        "status_at": "2026-12-01T10:01:00Z",
        "recipient_id": "919800000001",
        "recipient_participant_id": None,
        "phone_number_id": PHONE_NUMBER_ID,
        "conversation_id": "conv-1",
        "conversation_origin_type": "utility",
        "conversation_expires_at": None,
        "pricing_billable": True,
        "pricing_model": "PMP",
        "pricing_type": "regular",
        "pricing_category": "utility",
        "errors": None,
        "biz_opaque_callback_data": None,
        "event_id": "ev-two",
        "account_id": ACCOUNT,
        "occurred_at": "2026-12-01T10:00:00Z",
        "received_at": "2026-12-01T10:00:01.000000Z",
        "malformed_fields": None,
    }
    assert statuses[f"wamid.C|failed|{_at(T0 + 5)}"]["errors"] == failed["errors"]
    assert statuses[f"wamid.B|read|{_at(T0 + 300)}"]["phone_number_id"] == PHONE_NUMBER_ID  # a bare value
    events = run.records["webhook_events"]
    assert sorted(e["event_id"] for e in events) == sorted(
        ["ev-read-B", "ev-sent-A", "ev-two", "ev-in", "ev-read-B-again", "ev-B"]
    )
    assert next(e for e in events if e["event_id"] == "ev-sent-A")["payload"] == sent["payload"]
    assert run.records["call_events"] == []
    assert run.last_state["bookmarks"]["message_statuses"] == {
        "writers": {
            "w1": {"seq": 1, "offset": (capture / "segments/w1/000000000001.jsonl").stat().st_size},
            "w2": {"seq": 1, "offset": (capture / "segments/w2/000000000001.jsonl").stat().st_size},
        }
    }
    assert not any(m["type"] == "ACTIVATE_VERSION" for m in run.messages)


def test_a_capture_that_grows_between_runs_is_read_on_from_the_bookmark(tmp_path):
    capture = tmp_path / "capture"
    first = envelope("message.status", status_value(status("wamid.A", "sent", T0)), event_id="e1")
    second = envelope("message.status", status_value(status("wamid.A", "delivered", T0 + 60)), event_id="e2")
    third = envelope("message.status", status_value(status("wamid.A", "read", T0 + 90)), event_id="e3")
    half = len(line(second)) // 2
    append(capture, "w1", 1, line(first), line(second)[:half])  # e2 still being written

    run1 = _run_capture(tmp_path, capture)
    append(capture, "w1", 1, line(second)[half:])  # e2 completed in the same segment
    append(capture, "w1", 2, line(third))  # the writer rotated
    run2 = _run_capture(tmp_path, capture, state=run1.last_state)
    run3 = _run_capture(tmp_path, capture, state=run2.last_state)

    assert [r["event_id"] for r in run1.records["webhook_events"]] == ["e1"]
    assert [r["event_id"] for r in run2.records["webhook_events"]] == ["e2", "e3"]
    assert [r["status"] for r in run2.records["message_statuses"]] == ["delivered", "read"]
    assert run3.returncode == 0
    assert run3.records["message_statuses"] == []
    assert run3.records["webhook_events"] == []
    assert run3.last_state["bookmarks"]["webhook_events"] == {
        "writers": {"w1": {"seq": 2, "offset": len(line(third))}}
    }


def test_lines_that_are_not_deliveries_are_counted_and_skipped_never_a_crash(tmp_path):
    capture = tmp_path / "capture"
    good = envelope("message.status", status_value(status("wamid.A", "sent", T0)), event_id="e1")
    no_id = {key: value for key, value in good.items() if key != "event_id"}
    bad_time = envelope(
        "message.status", status_value(status("wamid.B", "sent", T0) | {"timestamp": "soon"}), event_id="e3"
    )
    deep = json.dumps(good)[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    append(
        capture, "w1", 1, b"{not json}\n", line("[1, 2]"), line(no_id), line(deep), line(good), line(bad_time)
    )
    append(capture, "w1", 1, b'{"v": 1, "received_at": "2026-12-01T10:00:00Z", "headers": {}}\n')

    run = _run_capture(tmp_path, capture, streams=("message_statuses",))

    assert run.returncode == 0, run.stderr
    assert [r["id"] for r in run.records["message_statuses"]] == [
        f"wamid.A|sent|{_at(T0)}",
        "wamid.B|sent|soon",
    ]
    assert run.records["message_statuses"][1]["malformed_fields"] == {"status_at": "soon"}
    summary = "\n".join(tap_log(run.stderr, "INFO")[-3:])
    assert "Records: 2 message_statuses" in summary
    assert "5 message_statuses: capture lines skipped (not a delivery): not a delivery" in summary
    assert "1 malformed fields set aside: kept as received" in summary
    assert "Traceback" not in run.stderr


def test_a_lone_surrogate_in_a_delivery_becomes_a_replacement_character_and_the_run_reads_on(tmp_path):
    # Legal JSON (a text cut between an emoji's halves): the receiver captures it as it came.
    capture = tmp_path / "capture"
    cut = envelope(
        "message.status", status_value(status("wamid.S", "read", T0, biz_opaque_callback_data="@"))
    )
    raw = json.dumps(cut).replace('"@"', '"\\ud83d cut"')
    after = envelope("message.status", status_value(status("wamid.T", "sent", T0)), event_id="e3")
    append(capture, "w1", 1, line(raw), line(after))

    run = _run_capture(tmp_path, capture)

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    statuses = run.records["message_statuses"]
    assert [(r["wamid"], r["biz_opaque_callback_data"]) for r in statuses] == [
        ("wamid.S", "\ufffd cut"),
        ("wamid.T", None),
    ]
    assert len(run.records["webhook_events"]) == 2
    assert "1 message_statuses: texts repaired" in run.stderr


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("1796119200", "2026-12-01T10:00:00Z"),
        (1796119200, "2026-12-01T10:00:00Z"),
        ("0", "1970-01-01T00:00:00Z"),
        ("-5", "-5"),
        ("1796119200.5", "1796119200.5"),
        ("١٢", "١٢"),  # digits, but not ASCII ones
        (None, None),
    ],
)
def test_whatsapp_timestamps_become_rfc3339_and_other_values_stay_as_received(timestamp, expected):
    assert unix_time(timestamp) == expected


@pytest.mark.parametrize(
    ("payload", "values"),
    [
        ({"statuses": [1]}, [{"statuses": [1]}]),  # a bare value
        (envelope("message.status", {"statuses": [2]})["payload"], [{"statuses": [2]}]),
        ({"entry": [{"changes": [{"field": "calls", "value": {"calls": []}}]}]}, []),
        ({"entry": [{"changes": [{"value": {"statuses": [3]}}]}]}, [{"statuses": [3]}]),  # no field named
        ({"entry": "not a list"}, []),
        ({"entry": [{"changes": [{"field": "messages", "value": "not an object"}]}, None]}, []),
    ],
)
def test_a_payload_is_meta_s_whole_envelope_or_a_bare_value(payload, values):
    assert list(changes(payload, "messages")) == values


# Nothing listens on port 1: a store that cannot be reached (s3fs raises botocore's own error, not an
# OSError; ftp connects as its file system is made, and names the URL, password and all).
UNREACHABLE_S3 = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1"}
UNREACHABLE_S3 |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@pytest.mark.parametrize(
    ("location", "named"),
    [
        ("nosuch://bucket/prefix", "nosuch://bucket/prefix"),
        ("a-file", "capture.jsonl"),
        ("s3://bucket/prefix", "bucket/prefix"),
        ("ftp://reader:ftp-password-1@127.0.0.1:1/capture", "ftp://reader:[redacted]@127.0.0.1:1/capture"),
    ],
)
def test_a_capture_that_cannot_be_read_ends_its_streams_with_one_line_and_the_others_complete(
    start_emulator, tmp_path, location, named
):
    emulator = start_emulator(3, 30)
    if location == "a-file":
        location = str(tmp_path / "capture.jsonl")
        (tmp_path / "capture.jsonl").write_text("{}\n")
    config = {**emulator_config(emulator), "webhook_capture": location}
    catalog = tmp_path / "capture-catalog.json"
    catalog.write_text(
        json.dumps(select_streams(_discover(config, tmp_path), ("channels", *CAPTURE_STREAMS)))
    )

    run = run_tap(config, tmp_path, args=("--catalog", str(catalog)), env=UNREACHABLE_S3)

    assert run.returncode == 1
    assert len(run.records["channels"]) == len(emulator.state.dataset.export()["channels"])
    errors = tap_log(run.stderr, "ERROR")
    assert len(errors) == len(CAPTURE_STREAMS), run.stderr
    assert all(named in error and "check webhook_capture" in error for error in errors)
    assert "Traceback" not in run.stderr
    assert "ftp-password-1" not in run.stderr
    assert all(run.last_state["bookmarks"][s].get("writers", {}) == {} for s in CAPTURE_STREAMS)


def test_a_bookmark_with_entries_that_are_not_positions_is_read_from_their_start_said_once(tmp_path):
    capture = tmp_path / "capture"
    append(capture, "w1", 1, line(envelope("message.status", status_value(status("wamid.A", "sent", T0)))))
    append(capture, "w2", 1, line(envelope("message.status", status_value(status("wamid.B", "sent", T0)))))
    w2_end = (capture / "segments/w2/000000000001.jsonl").stat().st_size
    state = {
        "bookmarks": {
            "message_statuses": {"writers": {"w1": {"seq": "one"}, "w2": {"seq": 1, "offset": w2_end}}}
        }
    }

    run = _run_capture(tmp_path, capture, state=state, streams=("message_statuses",))
    again = _run_capture(tmp_path, capture, state=run.last_state, streams=("message_statuses",))

    assert [r["wamid"] for r in run.records["message_statuses"]] == ["wamid.A"]
    assert len([m for m in tap_log(run.stderr, "WARNING") if "not positions" in m]) == 1
    assert run.last_state["bookmarks"]["message_statuses"]["writers"]["w1"] == {
        "seq": 1,
        "offset": (capture / "segments/w1/000000000001.jsonl").stat().st_size,
    }
    assert again.records["message_statuses"] == []
    assert not [m for m in tap_log(again.stderr, "WARNING") if "not positions" in m]


def test_a_run_killed_part_way_resumes_from_its_last_state_and_misses_nothing(tmp_path):
    capture = tmp_path / "capture"
    lines = [
        line(
            envelope(
                "message.status", status_value(status(f"wamid.{n:06d}", "sent", T0 + n)), event_id=f"e{n}"
            )
        )
        for n in range(30_000)
    ]
    append(capture, "w1", 1, *lines[:20_000])  # about 11 MB: three batches
    append(capture, "w1", 2, *lines[20_000:])
    config = {**CREDENTIALS, "webhook_capture": str(capture)}
    catalog = tmp_path / "capture-catalog.json"
    catalog.write_text(json.dumps(select_streams(_discover(config, tmp_path), ("webhook_events",))))

    killed = run_tap_until(
        config,
        tmp_path,
        records_out("webhook_events", 12_000),
        streams=None,
        args=("--catalog", str(catalog)),
    )
    resumed = run_tap(config, tmp_path, state=killed.last_state, args=("--catalog", str(catalog)))

    assert killed.returncode == -9
    position = killed.last_state["bookmarks"]["webhook_events"]["writers"]["w1"]
    segment = lines[:20_000] if position["seq"] == 1 else lines[20_000:]
    ends = list(itertools.accumulate(len(text) for text in segment))
    assert position["offset"] in {0, *ends}  # at the end of a line
    read = ends.index(position["offset"]) + 1 if position["offset"] else 0
    read += 0 if position["seq"] == 1 else 20_000
    done = {r["event_id"] for r in killed.records["webhook_events"]}
    # The bookmark never passes a line whose record was not written before it ...
    assert done >= {f"e{n}" for n in range(read)}
    # ... and the resumed run reads on from it: every delivery loaded, those after it at most twice.
    again = [r["event_id"] for r in resumed.records["webhook_events"]]
    assert again == [f"e{n}" for n in range(read, 30_000)]
    assert 0 < read < 30_000
