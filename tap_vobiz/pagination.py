"""Reading Vobiz pages: the envelope, the cursor paginator, and the page-sequence check.

The API pages in two ways, and the SDK's paginators know neither fully:

- **Cursors** (a conversation's messages): a `has_more`/`next_cursor` pair where either
  may end the listing (`has_more: false`, or a null, empty or missing cursor), on pages
  that run from newest to oldest, so a rerun can stop as soon as a page reaches back
  past the bookmark instead of reading the whole history (`CursorPaginator`).
- **Page numbers** (contacts, templates, canned responses, ...): `page`/`limit` with an
  envelope `{"items", "total", "page", "limit", "has_more"}` whose `limit` may be smaller
  than the one asked for, and which some lists carry without documenting any paging
  parameter. Its first page tells how many pages there are, so the rest can be fetched
  at once: the page-list reader (`tap_vobiz.page_lists`) plans the pages from what the
  envelopes say, `PageSequence` checks that each is the page asked for. A list may offer a
  cursor instead (`next_cursor`); the reader follows whichever the envelope offers.
"""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_vobiz.decoding import decode_json, parse_timestamp
from tap_vobiz.errors import CursorLoopError, PageLoopError

if t.TYPE_CHECKING:
    import datetime as dt

    import requests

_PAGE_ATTRIBUTE = "_vobiz_page"


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

    @override
    def has_more(self, response: requests.Response) -> bool:
        page = read_page(response)
        if next_cursor(page) is None:
            return False
        if self.stop_before is not None and self._reaches_past_stop(page["items"]):
            self.stopped_early = True
            return False
        return True

    @override
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


class PageSequence:
    """A page-numbered sequence's check: each page is the one asked for, never a repeat of the one before.

    Not a paginator: the page-list reader (`tap_vobiz.page_lists`) plans which pages to ask
    for from what the envelopes say, and asks for many at once. Asking for page N and
    being served another page, or the same rows as the page before, is an API fault:
    paging on would never end.
    """

    def __init__(self, *, listing: str = "the list") -> None:
        self.listing = listing
        self._previous: tuple[int, list[object]] | None = None

    def check(self, page: dict[str, t.Any], asked: int) -> None:
        """Raise PageLoopError when `page` is not page `asked`, or repeats the page before it."""
        served = page.get("page")
        if type(served) is int and served != asked:
            raise PageLoopError(
                f"Vobiz served page {served} of {self.listing} when asked for page {asked}: it "
                "does not page as documented; stopping instead of reading the same rows again "
                "(an API fault: rerun later)"
            )
        ids = [item.get("id") for item in page["items"] if isinstance(item, dict)]
        if ids and self._previous is not None and self._previous == (asked - 1, ids):
            raise PageLoopError(
                f"Vobiz served the same rows for pages {asked - 1} and {asked} of {self.listing}; "
                "stopping instead of paging forever (an API fault: rerun later)"
            )
        self._previous = (asked, ids)


def next_cursor(page: dict[str, t.Any]) -> str | None:
    """The cursor a page offers for the next one; None when it offers none or says it is the last."""
    cursor = page.get("next_cursor")
    if page.get("has_more") is False or not isinstance(cursor, str) or not cursor:
        return None
    return cursor


def is_page_numbered(page: dict[str, t.Any]) -> bool:
    """Whether an envelope says it is one page of several (`page`, `limit`, `total` or `has_more`)."""
    return any(name in page for name in ("page", "limit", "total", "has_more"))


def page_limit(page: dict[str, t.Any], asked: int) -> int:
    """The server's page size: the envelope's `limit`; without one, the rows of a page that says
    `has_more` while it holds fewer than asked (the server pages smaller); else the `limit` asked for."""
    limit = page.get("limit")
    if type(limit) is int and limit > 0:
        return limit
    served = len(page["items"])
    return served if page.get("has_more") is True and 0 < served < asked else asked


def page_total(page: dict[str, t.Any]) -> int | None:
    """The envelope's `total`, when it is a count."""
    total = page.get("total")
    return total if type(total) is int and total >= 0 else None
