"""Page-numbered lists over live data: read fast, emitted in order, and no row lost to a shift.

Contacts, templates, canned responses (and campaigns, their recipients, call logs) are
`page`/`limit` lists with no time filter, so each run reads them whole. Three things the
SDK's sequential paging does not give:

- **Speed**: the first page's envelope says how many pages there are (`total`/`limit`);
  the others are requested at once on `max_workers` threads (`fetch_in_order`: bounded
  look-ahead, pages handed back in page order), through the same pacer as every other
  request. Pages the list grew by meanwhile are followed one after another.
- **Exactness while the list moves**: these are offsets into live data. A row deleted
  before a page boundary while the list is read moves every row behind it one place up,
  and the row that crossed the boundary is in neither page: it *slips*. An incremental run
  would never see it again (its `updated_at` is old). Each reading of a list (a *pass*)
  therefore watches for signs that the list moved: envelopes whose `total` differ, a
  number of rows unlike `total`, a row created or changed after the second the pass
  began in (by the API's clock). Any sign, and the list is read again; that pass emits only the rows no
  earlier pass saw (ids are kept as 8-byte hashes). Up to `MAX_PASSES` passes; a list that
  moves during every one of them leaves its stream's bookmark (or table version) where
  it was, with a warning, so nothing is lost.
- **Deletions**: Vobiz deletes without a trace. A stream that emitted every row of its
  lists (a full-table stream, or an incremental one read without state) ends with an
  ACTIVATE_VERSION message, so a target such as target-postgres removes or soft-deletes
  (`_sdc_deleted_at`) the rows that are gone. It is sent at the end, once every list has
  settled, never at the start as the SDK does: a run that fails midway must not leave
  the warehouse's rows marked deleted.
"""

from __future__ import annotations

import array
import datetime as dt
import email.utils
import functools
import itertools
import threading
import time
import typing as t
from dataclasses import dataclass, field

from tap_vobiz import run_report
from tap_vobiz.client import VobizStream
from tap_vobiz.concurrency import DEFAULT_MAX_WORKERS, fetch_in_order
from tap_vobiz.incremental import WindowedStream
from tap_vobiz.pagination import PageNumberPaginator, page_has_more, parse_timestamp, planned_pages, read_page

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

# Readings of one list before giving up on it settling.
MAX_PASSES = 3
# Rows asked for per page; the server may serve fewer (its envelope's `limit` says how many).
PAGE_LIMIT = 100


@dataclass
class Page:
    """One page of a list: its number, its rows, its envelope, and the API's clock when served."""

    number: int
    items: list[dict[str, t.Any]]
    envelope: dict[str, t.Any]
    served_at: dt.datetime | None


@dataclass
class ListPass:
    """One reading of a whole list, and the signs that the list moved while it was read."""

    change_fields: tuple[str, ...]
    started_at: dt.datetime | None = None
    totals: set[int] = field(default_factory=set)
    rows: int = 0
    changed_rows: int = 0
    every_page_totalled: bool = True

    def add(self, page: Page) -> None:
        if self.started_at is None:
            self.started_at = page.served_at
        total = page.envelope.get("total")
        if type(total) is int:
            self.totals.add(total)
        else:
            self.every_page_totalled = False
        self.rows += len(page.envelope["items"])  # as served: `total` counts what the API counts
        if self.started_at is not None and any(
            _latest(page.items, name) > self.started_at for name in self.change_fields
        ):
            for item in page.items:
                for name in self.change_fields:
                    moment = parse_timestamp(item.get(name))
                    if moment is not None and moment > self.started_at:
                        self.changed_rows += 1
                        break

    def moved(self) -> str | None:
        """Why the list may have shifted under this pass; None when nothing says so."""
        if len(self.totals) > 1:
            return f"its total went from {min(self.totals)} to {max(self.totals)} while it was read"
        if self.every_page_totalled and self.totals and self.rows != (total := next(iter(self.totals))):
            return f"{self.rows} rows were served for a total of {total}"
        if self.changed_rows:
            return f"{self.changed_rows} rows were created or changed while it was read"
        return None


class SeenIds:
    """The ids a list's passes have seen, as 8-byte hashes: a few MB for hundreds of thousands."""

    def __init__(self) -> None:
        self._hashes = array.array("q")
        self._lookup: frozenset[int] | None = None
        self._added: set[int] = set()

    def add(self, row: dict[str, t.Any]) -> None:
        self._hashes.append(_id_hash(row))

    def seal(self) -> None:
        """Before a further pass: make membership tests fast."""
        self._lookup = frozenset(self._hashes)

    def is_new(self, row: dict[str, t.Any]) -> bool:
        """In a further pass: whether no pass before has seen this row (then remember it)."""
        key = _id_hash(row)
        if (self._lookup is not None and key in self._lookup) or key in self._added:
            return False
        self._added.add(key)
        return True


def _id_hash(row: dict[str, t.Any]) -> int:
    """A row's id as 8 bytes (any id: a malformed one may be an object, which has no hash)."""
    row_id = row.get("id")
    return hash(row_id if type(row_id) is str else repr(row_id))


class PageListStream(VobizStream):
    """A stream read from page-numbered lists, whole, every run; ACTIVATE_VERSION if it emitted every row."""

    # Row fields whose time, after the second a pass began in, means the row was created or changed meanwhile.
    change_fields: tuple[str, ...] = ("created_at", "updated_at")
    # A list under a parent: the field (e.g. `campaign_id`) filled in from the parent when a row lacks it.
    parent_key: str | None = None

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsettled_lists = 0
        self._pages_to_read: int | None = None
        self._lock = threading.Lock()
        self._change_fields = tuple(f for f in self.change_fields if f in self.schema["properties"])

    # What to read and what to emit: the streams say what differs.

    def list_contexts(self) -> t.Iterable[Context | None]:
        """The lists this stream reads: one (the default), or one per parent (a channel's templates)."""
        return [None]

    def keeps(self, row: dict[str, t.Any]) -> bool:
        """Whether a row of the first pass is emitted (all rows here; an incremental stream filters)."""
        return True

    def start_reading(self) -> bool:
        """Begin the stream's run; True when it emits every row (so ACTIVATE_VERSION applies)."""
        return True

    def finish_reading(self, *, settled: bool) -> None:
        """The stream's rows are all emitted; `settled` False when a list kept moving."""

    # Requests

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        return {"page": next_page_token or 1, "limit": PAGE_LIMIT}

    def get_new_paginator(self) -> PageNumberPaginator:  # type: ignore[override]
        return PageNumberPaginator(listing=self.path)

    @functools.cached_property
    def _send(self) -> t.Callable[[requests.PreparedRequest, Context | None], requests.Response]:
        return self.request_decorator(self._request)

    def fetch_page(self, context: Context | None, number: int) -> Page:
        """Request page `number` of a list (with the retries, pacing and checks of every request)."""
        response = self._send(self.prepare_request(context, number), context)
        return Page(number, list(self.parse_response(response)), read_page(response), _served_at(response))

    # Reading

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        emits_every_row = self.start_reading()
        version = self._begin_table_version() if emits_every_row else None
        self._unsettled_lists = 0
        self._pages_to_read = None
        # The progress line's total: a single list's pages, once its first page has told.
        yield from self.read_lists(
            self.list_contexts(),
            self.read_list,
            lists_to_read=lambda: None if self.parent_name else self._pages_to_read,
        )
        settled = not self._unsettled_lists
        if version is not None and settled:
            self._write_activate_version_message(version)
        self.finish_reading(settled=settled)

    def all_rows(self) -> t.Iterator[dict[str, t.Any]]:
        """Every row with an id of this stream's (single) list, for a stream that reads a list
        under each row (a channel's templates, a campaign's recipients), selected or not."""
        for page in self.read_list(None, keeps=lambda row: type(row.get("id")) is str and bool(row["id"])):
            yield from page

    def read_list(
        self, context: Context | None, keeps: t.Callable[[dict[str, t.Any]], bool] | None = None
    ) -> t.Iterator[list[dict[str, t.Any]]]:
        """One list's rows to emit (`keeps`, by default `self.keeps`), a page at a time, until a
        pass finds the list still.

        Runs on a worker when the stream reads several lists.
        """
        keeps = keeps or self.keeps
        seen = SeenIds()
        listing = self.get_url(context)
        for attempt in range(1, MAX_PASSES + 1):
            reading = ListPass(self._change_fields)
            found = 0
            for page in self._read_pass(context, reading):
                rows = []
                for row in page.items:
                    if attempt == 1:
                        seen.add(row)
                        if keeps(row):
                            rows.append(row)
                    elif seen.is_new(row):
                        rows.append(row)
                        found += 1
                if rows:
                    if self.parent_key and context:
                        for row in rows:
                            if not row.get(self.parent_key):
                                row[self.parent_key] = context[self.parent_key]
                    yield rows
            if attempt > 1:
                self.report.add(run_report.ROWS_FOUND_AGAIN, found)
                self.logger.info(
                    "%s: reading %d found %d rows no earlier reading saw", listing, attempt, found
                )
            reason = reading.moved()
            if reason is None:
                return
            self.report.add(run_report.LISTS_READ_AGAIN)
            if attempt == MAX_PASSES:
                with self._lock:
                    self._unsettled_lists += 1
                self.logger.warning(
                    "%s kept changing through %d readings (%s): rows may have slipped between pages, so "
                    "the %s bookmark (or table version) stays where it was; the next run reads it again",
                    listing,
                    MAX_PASSES,
                    reason,
                    self.name,
                )
                return
            self.logger.info(
                "%s changed while it was read (%s): reading it again for rows that slipped between pages",
                listing,
                reason,
            )
            seen.seal()

    def _read_pass(self, context: Context | None, reading: ListPass) -> t.Iterator[Page]:
        """Every page of a list once, in page order: the first, the planned rest at once, then any growth."""
        paginator = self.get_new_paginator()
        paginator.listing = self.get_url(context)
        first = self.fetch_page(context, 1)
        planned = planned_pages(first.envelope)
        self._pages_to_read = (self._pages_to_read or 0) + planned
        pages: t.Iterator[Page] = iter([first])
        if planned > 1:
            workers = min(int(self.config.get("max_workers", DEFAULT_MAX_WORKERS)), planned - 1)
            # Pages are single requests: two per worker queued keep every worker busy.
            rest = fetch_in_order(
                range(2, planned + 1),
                lambda n: [self.fetch_page(context, n)],
                workers=workers,
                lookahead=2 * workers,
            )
            pages = itertools.chain(pages, (page for _, fetched in rest for page in fetched))
        last = first
        for page in pages:
            paginator.check(page.envelope, page.number)
            reading.add(page)
            last = page
            yield page
        # The list grew while it was read: follow it one page after another.
        while last.number >= planned and page_has_more(last.envelope):
            last = self.fetch_page(context, last.number + 1)
            paginator.check(last.envelope, last.number)
            reading.add(last)
            yield last

    # Table versions (deletions)

    @property
    def emit_activate_version_messages(self) -> bool:
        """False for the SDK, which would send ACTIVATE_VERSION before the records; `get_records` sends it
        after them, once every list has settled."""
        return False

    def _begin_table_version(self) -> int | None:
        """A new table version for this run's records, unless `emit_activate_version_messages` is off."""
        if not self.config.get("emit_activate_version_messages", True):
            return None
        # Milliseconds: two runs in one second still get different versions.
        self._stream_version = time.time_ns() // 1_000_000
        return self._stream_version


_NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _latest(items: list[dict[str, t.Any]], name: str) -> dt.datetime:
    """The latest time in a field of a page's rows (`_NEVER` when none parses).

    Fast for the API's own layout (`2026-10-31T12:00:00Z`, where text order is time
    order): one parse per page instead of one per row. Other layouts are parsed row by row.
    """
    values = [item.get(name) for item in items]
    texts: list[str] = [v for v in values if type(v) is str and len(v) == 20 and v[19] == "Z"]
    if len(texts) == len(values) and (latest := parse_timestamp(max(texts, default=None))) is not None:
        return latest
    moments = [m for v in values if (m := parse_timestamp(v)) is not None]
    return max(moments, default=_NEVER)


def _served_at(response: requests.Response) -> dt.datetime | None:
    """The API's clock when it served a response (its `Date` header)."""
    try:
        moment = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else None


class IncrementalPageListStream(PageListStream, WindowedStream):
    """A page-numbered list read whole, emitting the rows changed since bookmark - `lookback_hours`.

    One bookmark (the replication key, e.g. `updated_at`) for the stream, moved when the
    stream completes and every list settled, never past the API's clock at the start (see
    `tap_vobiz.incremental`). Read without state, it emits every row: then, as a
    full-table stream does, it ends with ACTIVATE_VERSION, which reflects deletions.
    """

    replication_key = "updated_at"

    def start_reading(self) -> bool:
        return self.open_window().horizon is None

    def keeps(self, row: dict[str, t.Any]) -> bool:
        window = self._window
        return window is None or window.includes(parse_timestamp(row.get(self.replication_key or "")))

    def finish_reading(self, *, settled: bool) -> None:
        if settled:
            self.close_window()
        else:
            self._window = None
