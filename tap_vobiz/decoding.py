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

    What it returns may hold lone surrogates (`without_lone_surrogates`)."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        # msgspec refuses numbers beyond 64 bits or a double's range, which `json` takes (and
        # lone surrogates, which `json` takes as they are).
        return json.loads(data)


def without_lone_surrogates(content: bytes | str, body: t.Any) -> tuple[t.Any, int]:
    """`body`, decoded from the JSON `content`, with every lone surrogate in its texts replaced by
    U+FFFD, and how many texts changed. A lone surrogate is legal JSON (`"\\ud83d"`: a text cut
    mid-emoji) that no UTF-8 output can hold: the Singer writer would fail on it, a traceback."""
    escaped = (
        _SURROGATE_ESCAPE.search(content)
        if isinstance(content, bytes)
        else _SURROGATE_ESCAPE_TEXT.search(content)
    )
    if escaped and _has_lone_surrogate(body):
        return _without_lone_surrogates(body)
    return body, 0


# `\ud800`-`\udfff` escaped in the body: a surrogate, paired (an emoji written as escapes) or lone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(body: t.Any) -> bool:
    """Whether a decoded body holds a lone surrogate: paired ones decode to their character, and
    most pages hold some (emoji written as escapes, as any ASCII-only JSON writer does). Encoding
    the body again, in C, finds one; walking every text of the page in Python cost a third of the
    tap's CPU."""
    try:
        msgspec.json.encode(body)
    except (UnicodeEncodeError, TypeError, OverflowError, ValueError):
        return True  # (or a number past 64 bits, from `json`: then walk it to be sure)
    return False


def _without_lone_surrogates(value: t.Any) -> tuple[t.Any, int]:
    """`value` with every lone surrogate in its texts replaced by U+FFFD (it cannot be written as
    UTF-8, so no record holding one could be sent on), and how many texts changed."""
    if isinstance(value, str):
        try:
            value.encode()  # fails on a surrogate, and only on one
        except UnicodeEncodeError:
            pass
        else:
            return value, 0
        # Paired surrogates become the character they encode; lone ones U+FFFD.
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace"), 1
    if isinstance(value, list):
        pairs = [_without_lone_surrogates(item) for item in value]
        return [item for item, _ in pairs], sum(fixed for _, fixed in pairs)
    if isinstance(value, dict):
        fixed = 0
        repaired = {}
        for key, item in value.items():
            new_key, key_fixed = _without_lone_surrogates(key)
            repaired[new_key], item_fixed = _without_lone_surrogates(item)
            fixed += key_fixed + item_fixed
        return repaired, fixed
    return value, 0


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
