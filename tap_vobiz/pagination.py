"""Reading Vobiz pages: the envelope, the cursor, and where to stop on newest-first pages.

The SDK's paginators take the next token from the response but know nothing of two
things this API needs: a `has_more`/`next_cursor` pair where either may end the
listing (`has_more: false`, or a null, empty or missing cursor), and message pages that
run from newest to oldest, so a rerun can stop as soon as a page reaches back past the
bookmark instead of reading the whole history. Both live here, in one paginator.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import typing as t

import msgspec
from singer_sdk.pagination import BaseAPIPaginator

from tap_vobiz.errors import CursorLoopError

if t.TYPE_CHECKING:
    import requests

_PAGE_ATTRIBUTE = "_vobiz_page"
_FRACTION = re.compile(r"\.(\d+)(?=[+-]\d\d:?\d\d$|$)")


_DECODER = msgspec.json.Decoder()


def decode_json(data: bytes | str) -> t.Any:
    """Decode JSON (msgspec: several times faster than `json`); ValueError when it is not JSON."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        # msgspec refuses numbers beyond 64 bits or a double's range, which `json` takes.
        return json.loads(data)


class MalformedPageError(ValueError):
    """A 2xx response whose body is not a Vobiz page envelope."""


def read_page(response: requests.Response) -> dict[str, t.Any]:
    """Decode a response's page envelope (`{"items": [...], ...}`) once, and cache it.

    Raises MalformedPageError when the body is not JSON or has no `items` list.
    """
    page = getattr(response, _PAGE_ATTRIBUTE, None)
    if page is None:
        try:
            page = decode_json(response.content)
        except ValueError as error:
            raise MalformedPageError(f"response body is not JSON ({error})") from error
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise MalformedPageError("response body has no 'items' list")
        setattr(response, _PAGE_ATTRIBUTE, page)
    return page


def parse_timestamp(value: object) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when it is not one."""
    if type(value) is not str:
        return None
    return _parse_timestamp_text(value)


@functools.lru_cache(maxsize=16384)
def _parse_timestamp_text(value: str) -> dt.datetime | None:
    # Cached: each message's `created_at` is checked, compared with the horizon and
    # bookmarked, close together in time (the cache is thread-safe).
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if fraction := _FRACTION.search(text):
        # Python 3.10's fromisoformat takes only 3 or 6 fractional digits; RFC 3339 allows any.
        text = f"{text[: fraction.start()]}.{fraction.group(1)[:6].ljust(6, '0')}{text[fraction.end() :]}"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class CursorPaginator(BaseAPIPaginator[str | None]):
    """Follows `next_cursor` while `has_more` allows, refusing to follow a cursor twice.

    With `stop_before` (and `timestamp_field`), pages are taken to run newest to
    oldest, as the messages endpoint documents: once a page holds an item older than
    `stop_before`, every later page is older still, so paging stops after it. The order
    inside a page is not relied on: the page's oldest item decides.
    """

    def __init__(
        self,
        *,
        stop_before: dt.datetime | None = None,
        timestamp_field: str = "created_at",
    ) -> None:
        super().__init__(None)
        self.stop_before = stop_before
        self.timestamp_field = timestamp_field
        self.stopped_early = False
        self._followed: set[str] = set()

    def has_more(self, response: requests.Response) -> bool:
        page = read_page(response)
        cursor = page.get("next_cursor")
        if page.get("has_more") is False or not cursor or not isinstance(cursor, str):
            return False
        if self.stop_before is not None and self._reaches_past_stop(page["items"]):
            self.stopped_early = True
            return False
        return True

    def get_next(self, response: requests.Response) -> str | None:
        cursor: str = read_page(response)["next_cursor"]
        if cursor in self._followed:
            raise CursorLoopError(
                f"Vobiz returned cursor {cursor[:40]!r} a second time after {self.count} pages "
                "of the same listing; stopping instead of paging forever (an API fault: rerun later)"
            )
        self._followed.add(cursor)
        return cursor

    def _reaches_past_stop(self, items: list) -> bool:
        for item in items:
            if isinstance(item, dict):
                moment = parse_timestamp(item.get(self.timestamp_field))
                if moment is not None and moment < self.stop_before:  # type: ignore[operator]
                    return True
        return False
