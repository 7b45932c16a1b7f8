"""Property-based: parsing pages, content, timestamps and fields never raises and keeps the raw value."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tap_vobiz.conversation_streams import ConversationsStream, MessagesStream, parse_content
from tap_vobiz.decoding import parse_timestamp
from tap_vobiz.malformed_fields import MALFORMED_FIELDS, field_checks, set_aside_malformed_fields
from tap_vobiz.pagination import MalformedPageError, read_page

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _response(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    return response


@given(st.binary() | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_any_body_is_a_page_or_a_malformed_page_error(body):
    try:
        page = read_page(_response(body))
    except MalformedPageError:
        return
    assert isinstance(page["items"], list)


@given(st.lists(JSON_VALUES, max_size=5))
def test_a_page_keeps_its_items_as_received(items):
    body = json.dumps({"items": items, "has_more": False}).encode()
    assert read_page(_response(body))["items"] == json.loads(body)["items"]


@given(st.one_of(st.text(), JSON_VALUES, JSON_VALUES.map(json.dumps)))
def test_content_parses_to_an_object_or_none(content):
    parsed = parse_content(content)
    assert parsed is None or isinstance(parsed, dict)
    if isinstance(content, str) and parsed is not None:
        assert parsed == json.loads(content)


@given(st.one_of(st.text(), JSON_VALUES))
def test_timestamps_parse_to_aware_datetimes_or_none(value):
    parsed = parse_timestamp(value)
    assert parsed is None or (isinstance(parsed, dt.datetime) and parsed.tzinfo is not None)


RFC3339_OFFSETS = st.integers(-23 * 60, 23 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=RFC3339_OFFSETS))
def test_every_rfc3339_timestamp_parses_to_the_same_instant(moment):
    text = moment.isoformat()
    assert parse_timestamp(text) == moment


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    """Any RFC 3339 date-time text (any fraction length, T/t, Z/z or an offset) and its instant."""
    moment = draw(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)))
    digits = draw(st.text("0123456789", min_size=0, max_size=12))
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    zone = draw(st.sampled_from(["Z", "z", "offset"]))
    offset = (
        ""
        if zone != "offset"
        else f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )
    text = f"{moment.year:04d}-{moment:%m-%d}" + draw(st.sampled_from("Tt")) + f"{moment:%H:%M:%S}"
    text += (f".{digits}" if digits else "") + (offset or zone)
    tz = dt.timezone(dt.timedelta(minutes=minutes)) if offset else dt.timezone.utc
    micro = int(digits[:6].ljust(6, "0")) if digits else 0
    return text, moment.replace(microsecond=micro, tzinfo=tz)


@given(rfc3339_texts())
def test_rfc3339_in_every_spelling_parses_to_its_instant(text_and_moment):
    text, moment = text_and_moment
    assert parse_timestamp(text) == moment


NOT_RFC3339 = [
    "2026-10-31T12:00:00",  # no offset
    "20261031T120000Z",  # basic format
    "2026-W44-6T12:00:00Z",  # week date
    "2026-10-31",  # a date alone
    " 2026-10-31T12:00:00Z",  # spaces around
    "2026-10-31T12:00:00Z ",
    "2026-10-31 12:00:00Z",  # space for T
    "2026-10-31T12:00Z",  # no seconds
    "2026-10-31T12:00:00.Z",  # empty fraction
    "2026-10-31T12:00:00+0100",  # offset without colon
    "2026-10-31T12:00:00+01",
    "2026-13-01T00:00:00Z",  # no 13th month
    "2026-02-30T00:00:00Z",
    "2026-10-31T24:00:00Z",
    "2026-10-31T12:00:60Z",  # a leap second Python cannot hold
    "2026-10-31T12:00:00+24:00",
    "２０２６-10-31T12:00:00Z",  # non-ASCII digits  # noqa: RUF001
]


@pytest.mark.parametrize("text", NOT_RFC3339)
def test_what_is_not_rfc3339_is_not_a_timestamp(text):
    assert parse_timestamp(text) is None


@given(st.text(max_size=40).map(lambda s: s.strip() + "Z"))
def test_text_that_does_not_follow_the_grammar_is_never_a_timestamp(text):
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", text, re.ASCII):
        assert parse_timestamp(text) is None


@given(st.lists(st.sampled_from("0123456789a ٣-:+"), min_size=14, max_size=14))
def test_the_quick_path_for_the_apis_layout_takes_only_real_times(chars):
    digits = iter(chars)
    text = "".join(next(digits) if c == "d" else c for c in "dddd-dd-ddTdd:dd:ddZ")
    expected = None
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text, re.ASCII):
        try:
            expected = dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            expected = None
    assert parse_timestamp(text) == expected


def test_malformed_timestamps_in_records_go_to_malformed_fields():
    record = {"id": "m1", "created_at": "2026-10-31T12:00:00"}
    assert set_aside_malformed_fields(record, field_checks(MessagesStream.schema)) == ["created_at"]
    assert record["malformed_fields"] == {"created_at": "2026-10-31T12:00:00"}


@given(
    st.sampled_from([ConversationsStream.schema, MessagesStream.schema]).flatmap(
        lambda schema: st.fixed_dictionaries(
            {}, optional={name: JSON_VALUES for name in schema["properties"] if name != MALFORMED_FIELDS}
        ).map(lambda record: (schema, record))
    )
)
def test_malformed_fields_are_set_aside_with_their_raw_value(schema_and_record):
    schema, record = schema_and_record
    received = json.loads(json.dumps(record))
    malformed = set_aside_malformed_fields(record, field_checks(schema))
    for name, value in received.items():
        if name in malformed:
            assert record[name] is None
            assert record[MALFORMED_FIELDS][name] == value
        else:
            assert record[name] == value
