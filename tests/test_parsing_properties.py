"""Property-based: parsing pages, content, timestamps and fields never raises and keeps the raw value."""

from __future__ import annotations

import datetime as dt
import json

import requests
from hypothesis import given
from hypothesis import strategies as st

from tap_vobiz.conversation_streams import ConversationsStream, MessagesStream, parse_content
from tap_vobiz.malformed_fields import MALFORMED_FIELDS, field_checks, set_aside_malformed_fields
from tap_vobiz.pagination import MalformedPageError, parse_timestamp, read_page

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
