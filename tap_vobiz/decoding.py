"""Decoding what the API sends: JSON bodies, RFC 3339 timestamps, HTTP dates, and the API's clock.

Every module that reads a value the API wrote (pages, records, bookmarks, headers) parses it
here, one way: RFC 3339 exactly and the same on every Python version, HTTP dates for `Date`,
`Retry-After` and `Sunset`, and the API's clock from a response's `Date` header.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import re
import typing as t

import msgspec

if t.TYPE_CHECKING:
    import requests

# RFC 3339 `date-time`, exactly: any fraction length, `T`/`t`, `Z`/`z` or a +hh:mm offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))",
    re.ASCII,
)


_DECODER = msgspec.json.Decoder()


def decode_json(data: bytes | str) -> t.Any:
    """Decode JSON (msgspec: several times faster than `json`); ValueError when it is not JSON.

    A lone UTF-16 surrogate escape (`"\\ud800"`: legal JSON, e.g. a text cut between the two
    halves of an emoji) becomes U+FFFD, the replacement character: no UTF-8 output can hold it,
    and the Singer writer would fail on it with a traceback.
    """
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        # msgspec refuses numbers beyond 64 bits or a double's range, which `json` takes, and
        # lone surrogates, which `json` takes as they are.
        return _without_lone_surrogates(json.loads(data))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # `json` has joined every valid pair already


def _without_lone_surrogates(value: t.Any) -> t.Any:
    if type(value) is str:
        return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
    if type(value) is dict:
        return {_without_lone_surrogates(key): _without_lone_surrogates(item) for key, item in value.items()}
    if type(value) is list:
        return [_without_lone_surrogates(item) for item in value]
    return value


def parse_timestamp(value: object) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when it is not one."""
    if type(value) is not str:
        return None
    return parse_timestamp_text(value)


@functools.lru_cache(maxsize=16384)
def parse_timestamp_text(value: str) -> dt.datetime | None:
    """`parse_timestamp` for a value known to be a string (call it directly on hot paths).

    Exactly RFC 3339, the same on every Python version: `fromisoformat` would also take a
    date alone, no offset, basic (`20261031T120000Z`) or week dates, and spaces around.
    Fractions beyond microseconds are cut; a leap second (`:60`) is not a time Python has.
    """
    # Cached: each record's timestamps are checked, compared with the horizon and
    # bookmarked, close together in time (the cache is thread-safe).
    if (  # the API's own layout, `2026-10-31T12:00:00Z`: the quick way (fromisoformat checks the digits)
        len(value) == 20
        and value[19] == "Z"
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    ):
        try:
            return dt.datetime.fromisoformat(value[:19] + "+00:00")
        except ValueError:
            return None
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    if zulu:
        zone = dt.timezone.utc
    else:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            return None
        offset = dt.timedelta(hours=int(off_hours), minutes=int(off_minutes))
        zone = dt.timezone(-offset if sign == "-" else offset) if offset else dt.timezone.utc
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=zone
        )
    except ValueError:
        return None


def parse_http_date(value: object) -> dt.datetime | None:
    """An HTTP date (`Date`, `Retry-After`, `Sunset`: `Tue, 01 Dec 2026 20:00:00 GMT`) as an aware
    datetime; None when it is not one, or has no zone."""
    if not isinstance(value, str):
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else None


def parse_setting_timestamp(value: object) -> dt.datetime | None:
    """A timestamp from the config (`start_date`): RFC 3339, or a date or a time without an
    offset, taken as UTC (Meltano's `date_iso8601` settings are often written so)."""
    if (moment := parse_timestamp(value)) is not None or type(value) is not str:
        return moment
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# The earliest time there is: a `start_date` or bookmark of `0001-01-01T00:00:00Z` (Go's and
# .NET's zero time, a common "from the beginning") minus a window saturates here.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def minus(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """`moment - delta`, or the earliest time there is when that is before year 1.

    Every lookback and receipt window is taken off a time here: plain subtraction
    raises OverflowError for a `start_date` or bookmark near year 1.
    """
    try:
        return moment - delta
    except OverflowError:
        return EARLIEST


def format_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with `Z`, as the API writes its timestamps (`0001-01-01T00:00:00Z`: four digits).

    A time that in UTC falls before year 1 (`0001-01-01T00:00:00+01:00`) or after 9999 is
    not one Python has: it is written as the nearest that is, rather than raising OverflowError.
    """
    try:
        utc = moment.astimezone(dt.timezone.utc)
    except OverflowError:
        utc = EARLIEST if moment.year == 1 else LATEST
    return utc.isoformat().replace("+00:00", "Z")


def served_at(response: requests.Response) -> dt.datetime | None:
    """The API's clock when it served a response (its `Date` header); None without one."""
    return parse_http_date(response.headers.get("Date"))
