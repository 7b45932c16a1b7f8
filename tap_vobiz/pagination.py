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

import re
import typing as t
from http import HTTPStatus

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_vobiz.decoding import decode_json, parse_timestamp, without_lone_surrogates
from tap_vobiz.errors import CursorLoopError

if t.TYPE_CHECKING:
    import datetime as dt

    import requests

_PAGE_ATTRIBUTE = "_vobiz_page"
# The envelope's values that were sent but could not be read (`read_page`): `["has_more 'yes'"]`.
UNREADABLE = "_unreadable"
_REPAIRED_ATTRIBUTE = "_vobiz_repaired_texts"


class MalformedPageError(ValueError):
    """A 2xx response whose body is not a Vobiz page envelope."""


def read_page(response: requests.Response) -> dict[str, t.Any]:
    """A response's page envelope, decoded once (and cached) and read the one way every shape allows.

    The docs show `{"items", "total", "page", "limit", "has_more"}` (and `next_cursor`), but
    also older and looser forms, all read here so that no reader meets them: the older docs'
    `{"items", "meta": {"total", "page"}}`; numbers and booleans sent as strings (`"50"`,
    `"true"`); an empty list as `"items": null`, without `items`, or as `204 No Content`.
    Envelope values that are none of these are dropped (an unknown value says nothing).

    Raises MalformedPageError when the body is not JSON, or is an object without a list of
    items that is not plainly empty (another key holds a list, or `total` counts rows).
    """
    page = getattr(response, _PAGE_ATTRIBUTE, None)
    if page is None:
        page = _envelope(response)
        setattr(response, _PAGE_ATTRIBUTE, page)
    return page


def repaired_texts(response: requests.Response) -> int:
    """How many texts of a response's page `read_page` had to repair (bytes that are not UTF-8, lone
    surrogates such as a message cut mid-emoji): each now holds U+FFFD where the bad part was."""
    return int(getattr(response, _REPAIRED_ATTRIBUTE, 0))


def _envelope(response: requests.Response) -> dict[str, t.Any]:
    if response.status_code == HTTPStatus.NO_CONTENT:
        return {"items": []}
    content = response.content
    repaired = 0
    try:
        body = decode_json(content)
    except ValueError as error:
        try:
            content.decode()
        except UnicodeDecodeError:
            # A byte that is not UTF-8 in one value must not cost the list: U+FFFD stands in for it.
            repaired += 1
            try:
                body = decode_json(content.decode(errors="replace"))
            except ValueError:
                raise MalformedPageError(f"response body is not JSON ({error})") from error
        else:
            raise MalformedPageError(f"response body is not JSON ({error})") from error
    body, fixed = without_lone_surrogates(content, body)
    repaired += fixed
    if repaired:
        setattr(response, _REPAIRED_ATTRIBUTE, repaired)
    if not isinstance(body, dict):
        raise MalformedPageError("response body is not a JSON object")
    meta = body.get("meta")
    page: dict[str, t.Any] = dict(meta) if isinstance(meta, dict) else {}
    page.update((name, value) for name, value in body.items() if name != "meta")
    unreadable = []
    for name, read in (("total", _count), ("page", _count), ("limit", _count), ("has_more", _flag)):
        if name not in page:
            continue
        if (value := read(page[name])) is None or (name == "limit" and value == 0):
            unreadable.append(f"{name} {page.pop(name)!r}")
        else:
            page[name] = value
    if unreadable:
        # Said, but not in a form the tap can read: it cannot trust a short page to be the last.
        page[UNREADABLE] = unreadable
    items = page.get("items")
    if items is None:
        # A list's end (a page past its last) may come so, whatever `total` says of the list.
        listed = sorted(name for name, value in body.items() if isinstance(value, list))
        if listed or "error" in body:
            found = (
                f"its lists: {', '.join(listed)}" if listed else f"keys: {', '.join(sorted(body)) or 'none'}"
            )
            raise MalformedPageError(f"response body has no 'items' list ({found})")
        page["items"] = []
    elif not isinstance(items, list):
        raise MalformedPageError("response body's 'items' is not a list")
    return page


def _count(value: object) -> int | None:
    """A non-negative whole number, sent as a number or as its digits (`"50"`, `"120.0"`)."""
    if type(value) is str and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    if type(value) is int:
        return value if value >= 0 else None
    if type(value) is float and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    return None


_NUMBER = re.compile(r"[0-9]{1,18}(\.0*)?", re.ASCII)


def _flag(value: object) -> bool | None:
    """A boolean, sent as one or as `"true"`/`"false"` (or 1/0)."""
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if type(value) is str and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


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
    for from what the envelopes say, and asks for many at once. A server that answers page N
    with another page, or with the rows of the page before, ignores `page` (as a list the
    docs give no paging parameters may): what it served is all it will serve, so the reading
    stops there, and the reader decides from `total` whether that was the whole list.
    """

    def __init__(self, *, listing: str = "the list") -> None:
        self.listing = listing
        self._previous: tuple[int, list[object]] | None = None

    def check(self, page: dict[str, t.Any], asked: int) -> str | None:
        """Why `page` is not page `asked` of the list (None when it is)."""
        served = page.get("page")
        if served is not None and served != asked:
            return f"Vobiz served page {served} when asked for page {asked}: it does not page as documented"
        ids = [item.get("id") for item in page["items"] if isinstance(item, dict)]
        if ids and self._previous is not None and self._previous == (asked - 1, ids):
            return (
                f"Vobiz served the rows of page {asked - 1} again when asked for page {asked}: "
                "it does not page as documented"
            )
        self._previous = (asked, ids)
        return None


def next_cursor(page: dict[str, t.Any]) -> str | None:
    """The cursor a page offers for the next one; None when it offers none or says it is the last."""
    cursor = page.get("next_cursor")
    if page.get("has_more") is False or not isinstance(cursor, str) or not cursor:
        return None
    return cursor


def is_page_numbered(page: dict[str, t.Any]) -> bool:
    """Whether an envelope says it is one page of several (`page`, `limit`, `total` or `has_more`)."""
    return any(name in page for name in ("page", "limit", "total", "has_more", UNREADABLE))


def page_limit(page: dict[str, t.Any], asked: int) -> int:
    """The server's page size, from a list's first page: its `limit`, or the rows it served when it
    served more than that (it ignores `limit`); without a `limit`, the rows it served when it served
    fewer than asked yet says there is more (`has_more`, or a `total` beyond them); else `asked`, or
    the rows served when more than that (the whole list, whatever was asked)."""
    served = len(page["items"])
    limit = page.get("limit")
    if limit:
        return max(limit, served)
    total = page.get("total")
    more = page.get("has_more") is True or (total is not None and served < total) or UNREADABLE in page
    return served if more and 0 < served < asked else max(served, asked)


def page_total(page: dict[str, t.Any]) -> int | None:
    """The envelope's `total` (a count, as `read_page` reads it)."""
    return page.get("total")
