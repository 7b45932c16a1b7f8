"""Record-level rules: content parsing, timestamps and where paging stops."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
import requests
from singer_sdk.singerlib import RecordMessage

from tap_vobiz.conversation_streams import parse_content
from tap_vobiz.decoding import parse_timestamp
from tap_vobiz.errors import CursorLoopError
from tap_vobiz.output import SingerOutput
from tap_vobiz.pagination import CursorPaginator


@pytest.mark.parametrize(
    ("content", "parsed"),
    [
        ('{"body": "How can I help?"}', {"body": "How can I help?"}),
        ('{"body":"caf\\u00e9"}', {"body": "café"}),
        ('{"body": "truncated', None),
        ("plain text", None),
        ("", None),
        ('["a list"]', None),
        ('"a string"', None),
        (None, None),
        (42, None),
        ("[" * 100_000, None),
    ],
)
def test_content_is_parsed_only_when_it_is_a_json_object(content, parsed):
    assert parse_content(content) == parsed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-01T12:00:00Z", dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)),
        ("2026-10-01T12:00:00.250Z", dt.datetime(2026, 10, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc)),
        ("2026-10-01T12:00:00.5Z", dt.datetime(2026, 10, 1, 12, 0, 0, 500000, tzinfo=dt.timezone.utc)),
        (
            "2026-10-01T12:00:00.123456789Z",
            dt.datetime(2026, 10, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc),
        ),
        ("2026-10-01T14:00:00+02:00", dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)),
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_each_timestamp_form_parses_to_its_instant_or_none(value, expected):
    assert parse_timestamp(value) == expected


def _response(body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


@pytest.mark.parametrize(
    "ending",
    [
        {"has_more": False, "next_cursor": "c2"},
        {"has_more": True, "next_cursor": None},
        {"has_more": True, "next_cursor": ""},
        {"has_more": True},
        {},
    ],
)
def test_any_documented_ending_ends_paging(ending):
    paginator = CursorPaginator()
    paginator.advance(_response({"items": [], **ending}))
    assert paginator.finished


def test_a_page_reaching_past_the_bookmark_is_the_last_one_read():
    stop = dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)
    paginator = CursorPaginator(stop_before=stop)
    newer = [{"created_at": "2026-10-01T13:00:00Z"}, {"created_at": "2026-10-01T12:00:00Z"}]
    paginator.advance(_response({"items": newer, "has_more": True, "next_cursor": "c1"}))
    assert not paginator.finished
    # The oldest item decides, wherever it sits in the page.
    mixed = [{"created_at": "2026-10-01T11:59:59Z"}, {"created_at": "2026-10-01T12:30:00Z"}]
    paginator.advance(_response({"items": mixed, "has_more": True, "next_cursor": "c2"}))
    assert paginator.finished and paginator.stopped_early


def test_a_cursor_seen_before_is_an_error_not_an_endless_loop():
    paginator = CursorPaginator()
    paginator.advance(_response({"items": [{}], "has_more": True, "next_cursor": "c1"}))
    paginator.advance(_response({"items": [{}], "has_more": True, "next_cursor": "c2"}))
    with pytest.raises(CursorLoopError):
        paginator.advance(_response({"items": [{}], "has_more": True, "next_cursor": "c1"}))


def test_properties_pruned_from_the_catalog_never_leave_the_tap(start_emulator, tmp_path):
    import json

    from tests.tap_runner import catalog_selecting, emulator_config, run_tap

    emulator = start_emulator(5, 200)
    catalog = catalog_selecting(("messages",))
    messages = next(e for e in catalog["streams"] if e["tap_stream_id"] == "messages")
    # Pruned by hand (personal data), and a stale catalog from before three fields existed.
    for name in ("contact_id", "content_json", "malformed_fields", "meta_message_id"):
        del messages["schema"]["properties"][name]
    messages["metadata"] = [m for m in messages["metadata"] if m["breadcrumb"][-1:] != ["contact_id"]]
    (tmp_path / "pruned.json").write_text(json.dumps(catalog))

    run = run_tap(
        emulator_config(emulator), tmp_path, args=("--catalog", str(tmp_path / "pruned.json")), streams=None
    )

    assert run.returncode == 0
    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "messages")
    assert len(run.records["messages"]) == 200
    for record in run.records["messages"]:
        assert set(record) <= set(schema["properties"])
        assert "contact_id" not in record and "content_json" not in record


@pytest.mark.parametrize("version", [None, 1764770000000])
def test_a_record_line_written_directly_is_the_line_its_message_writes(version):
    record = {
        "id": "m1",
        "content": '{"body": "caf\u00e9 \U0001f600"}',
        "created_at": "2026-10-31T12:00:00Z",
        "malformed_fields": None,
        "content_json": {"body": "caf\u00e9"},
        "n": 1.5,
        "ok": True,
    }
    direct, through_message = SingerOutput(), SingerOutput()
    direct._out, through_message._out = io.BytesIO(), io.BytesIO()
    direct.write_record("messages", record, version)
    through_message.write_message(
        RecordMessage(
            stream="messages", record=record, version=version, time_extracted=dt.datetime.now(dt.timezone.utc)
        )
    )
    moment = re.compile(rb'"time_extracted":"[^"]+"')
    assert moment.sub(b"T", direct._out.getvalue()) == moment.sub(b"T", through_message._out.getvalue())
    assert direct._out.getvalue().endswith(b"\n")
