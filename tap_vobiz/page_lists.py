"""Lists over live data: read fast, emitted in order, no row lost to a shift, and lists that settle.

Contacts, templates, canned responses, campaigns, their recipients, call logs (and the
conversation list) have no time filter, so each run reads them whole. The envelope of a
list's first page says how it pages, and the reader follows what it offers: a
`next_cursor` (followed one page after another), page numbers (`page`/`limit`, with
`total` and `has_more` when the server sends them), or a single page (`{"items": [...]}`).
Three things the SDK's sequential paging does not give:

- **Speed**: a page-numbered list's first page says how many pages there are
  (`total`/`limit`); the others are requested at once on `max_workers` threads
  (`fetch_in_order`: bounded look-ahead, pages handed back in page order), through the same
  pacer as every other request. What the envelopes say afterwards re-plans the rest
  (`Coverage`): pages the list grew by, a server whose `limit` changed between pages, a
  `has_more: false` that `total` contradicts, an envelope with neither (a full page is
  followed, a short or empty one ends the list).
- **Exactness while the list moves**: these are offsets into live data. A row deleted
  before a page boundary while the list is read moves every row behind it one place up,
  and the row that crossed the boundary is in neither page: it *slips*. An incremental run
  would never see it again (its `updated_at` is old). Each reading of a list (a *pass*)
  therefore watches for signs that the list moved: totals that differ, a number of rows
  unlike `total`, offsets no page could be had for, a row created or changed at or after
  the second the pass began in, by the API's clock (its clock has one-second resolution,
  so the start second counts; a time later than the API's clock when it served the row is
  no sign of anything). Any sign, and the list is read again; that pass emits only the
  rows no earlier pass saw (ids are kept as 8-byte hashes). A re-reading that finds nothing
  no earlier reading saw, with totals that agree, has settled the list (rows that were only
  updated meanwhile cannot have slipped). Up to `MAX_PASSES` passes; a list that moves
  during every one of them leaves its stream's bookmark (and table version) where they
  were, with one warning for the stream, so nothing is lost and the next run reads it again.
- **Deletions**: Vobiz deletes without a trace. A stream that emitted every row of its
  lists (a full-table stream, or an incremental one read without state) ends with an
  ACTIVATE_VERSION message, so a target such as target-postgres removes or soft-deletes
  (`_sdc_deleted_at`) the rows that are gone. It is sent at the end, only once every list
  (and any parent list it was read under) is known complete, never at the start as the SDK
  does: a run that fails midway, or cannot know it read everything, must not leave the
  warehouse's rows marked deleted.
"""

from __future__ import annotations

import array
import contextlib
import datetime as dt
import functools
import typing as t
from dataclasses import dataclass, field

from typing_extensions import override

from tap_vobiz import run_report
from tap_vobiz.concurrency import fetch_in_order
from tap_vobiz.decoding import parse_timestamp, served_at
from tap_vobiz.fan_out import FanOutStream, ListOutcome, ParentList, warn_unsettled
from tap_vobiz.incremental import WindowedStream
from tap_vobiz.pagination import (
    UNREADABLE,
    CursorPaginator,
    PageSequence,
    is_page_numbered,
    next_cursor,
    page_limit,
    page_total,
    read_page,
)

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

# Readings of one list before giving up on it settling.
MAX_PASSES = 3
# Rows asked for per page; the server may serve fewer (its envelope's `limit` says how many).
PAGE_LIMIT = 100
# Pages a reading may ask for beyond those its first page planned (a list without `total` is read
# so, one page after another); a reading cut short by it is not complete, so it sends no
# ACTIVATE_VERSION and keeps the bookmark.
MAX_EXTRA_PAGES = 100_000


@dataclass
class Page:
    """One page of a list: its number (in paging order), its rows, its envelope, the API's clock when
    served, and the response (whose decoded envelope it caches)."""

    number: int
    items: list[dict[str, t.Any]]
    envelope: dict[str, t.Any]
    served_at: dt.datetime | None
    response: requests.Response

    @property
    def limit(self) -> int:
        return page_limit(self.envelope, PAGE_LIMIT)


class Coverage:
    """Which offsets of a page-numbered list a pass has read, and which page to ask for next.

    Pages are placed by their own envelope (`page` x the `limit` it was served with), so a
    server whose page size changes, or whose `has_more: false` its own `total` contradicts,
    is read by what it says now rather than by the first page's plan. An empty or short page
    ends the list; `has_more: false` does too, unless `total` says there is more.
    """

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []
        self.asked: set[tuple[int, int]] = set()
        self.total: int | None = None
        self.ends_at: int | None = None  # where a page said the list ends
        self.limit = PAGE_LIMIT
        self.highest: tuple[int, bool] | None = None  # the last page's offset, and whether it said has_more
        self.until_empty = False
        self._inferred: int | None = None

    def add(self, page: Page) -> bool:
        """Note a page; True when it overlaps offsets already read (its rows may repeat)."""
        served = len(page.envelope["items"])
        limit = self._limit_of(page)
        start = (page.number - 1) * limit
        end = start + served
        overlaps = any(s < end and start < e for s, e in self.spans)
        self.spans = _merge([*self.spans, (start, end)])
        self.asked.add((page.number, limit))
        self.limit = limit
        if (total := page_total(page.envelope)) is not None:
            self.total = total
        has_more = page.envelope.get("has_more")
        # An envelope value sent but unreadable (`has_more: "yes"`, `total: -1`): only an empty page
        # then proves the end, not a short one.
        self.until_empty = self.until_empty or UNREADABLE in page.envelope
        # More rows than its own `limit` and no `has_more`: a server that ignores paging served it whole.
        ignores_limit = served > page.envelope.get("limit", served) and has_more is not True
        says_last = not served or (
            not self.until_empty
            and (
                ignores_limit
                or (has_more is False and self.total is None)
                or (served < limit and not has_more)
            )
        )
        if says_last:
            self.ends_at = end if self.ends_at is None else min(self.ends_at, end)
        if self.highest is None or start >= self.highest[0]:
            self.highest = (start, has_more is True)
        return overlaps

    def _limit_of(self, page: Page) -> int:
        """The page size a page was served with: its envelope's `limit`, else the size the first
        page without one showed (`page_limit`), kept for the pages after it."""
        if "limit" in page.envelope or self._inferred is None:
            limit = page.limit
            if "limit" not in page.envelope:
                self._inferred = limit
            return limit
        return self._inferred

    @property
    def read(self) -> int:
        """Offsets read: rows served, each counted once however pages overlapped."""
        return sum(e - s for s, e in self.spans)

    @property
    def read_to(self) -> int:
        """The offset up to which every row has been read (from the first on)."""
        return self.spans[0][1] if self.spans and self.spans[0][0] == 0 else 0

    def next_page(self) -> int | None:
        """The page to ask for next, under the server's current `limit`; None when none is wanted."""
        read_to = self.read_to
        if self.ends_at is not None and read_to >= self.ends_at:
            return None
        # Without a total, a full page is followed; and a page that says `has_more`, always.
        wanted = self.total if self.total is not None else read_to + 1
        if self.highest is not None and self.highest[1]:
            wanted = max(wanted, read_to + 1)
        if read_to >= wanted:
            return None
        number = read_to // self.limit + 1
        return None if (number, self.limit) in self.asked else number

    def gap(self) -> str | None:
        """Why the pages read do not make a whole list, when they do not."""
        if len(self.spans) > 1:
            return f"rows {self.read_to + 1} to {self.spans[1][0]} were on no page served"
        if self.highest is not None and self.highest[1] and self.ends_at is None:
            return "its last page said has_more, yet no further page could be asked for"
        return None


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass
class ListPass:
    """One reading of a whole list, and the signs that the list moved while it was read."""

    change_fields: tuple[str, ...]
    started_at: dt.datetime | None = None
    totals: list[int] = field(default_factory=list)  # in the order seen, each change once
    rows: int = 0
    changed_rows: int = 0
    future_rows: int = 0
    gap: str | None = None
    # Fewer rows than `total` by a page or more: pages the server would not serve, not a count that is off.
    withheld: bool = False
    # Why the server cannot be paged further (it ignores `page`): reading the list again cannot help.
    stopped: str | None = None
    # Rows served again on the page after their own, where the pages do not overlap: the list's
    # order moved them (an update moves a row in a list ordered by update, newest first).
    served_twice: int = 0
    # The last page, asked for again once every page was answered, holds other rows.
    last_page_moved: bool = False

    def add(self, page: Page) -> None:
        if self.started_at is None:
            self.started_at = page.served_at
        total = page_total(page.envelope)
        if total is not None and (not self.totals or self.totals[-1] != total):
            self.totals.append(total)
        started, served = self.started_at, page.served_at
        if started is not None and any(_latest(page.items, name) >= started for name in self.change_fields):
            for item in page.items:
                moments = [parse_timestamp(item.get(name)) for name in self.change_fields]
                times = [moment for moment in moments if moment is not None and moment >= started]
                if not times:
                    continue
                if served is not None and min(times).replace(microsecond=0) > served:
                    # Later than the API's clock when it served the row (at the clock's one-second
                    # resolution: `…:00.700Z` is within the second `…:00`): a clock or data fault,
                    # not a change made while the list was read.
                    self.future_rows += 1
                else:
                    self.changed_rows += 1

    @property
    def steady_total(self) -> int | None:
        """The one total every page agreed on (None when they differed, or none had one)."""
        return self.totals[0] if len(self.totals) == 1 else None

    def moved(self) -> str | None:
        """Why the list may have shifted under this pass; None when nothing says so."""
        if self.stopped:
            return self.stopped
        if len(self.totals) > 1:
            return f"its total went from {' to '.join(map(str, self.totals))} while it was read"
        if self.gap:
            return self.gap
        if self.totals and self.rows != self.totals[-1]:
            # The last total told (a page without one, a 204 say, does not excuse the count).
            return f"{self.rows} rows were served for a total of {self.totals[-1]}"
        if self.changed_rows:
            return f"{self.changed_rows} rows were created or changed while it was read"
        if self.served_twice:
            return f"{self.served_twice} rows were served on two pages (the list's order moved them)"
        if self.last_page_moved:
            return "its last page, asked for again after the others were answered, holds other rows"
        return None

    def settles_after(self, before: ListPass, found: int) -> bool:
        """A re-reading that found no row unseen before, with totals that agree, settles the list."""
        return (
            found == 0
            and not self.gap
            and not self.withheld
            and len(self.totals) <= 1
            and self.totals[-1:] == before.totals[-1:]
        )


class SeenIds:
    """The ids a list's passes have seen, as 8-byte hashes: a few MB for hundreds of thousands."""

    def __init__(self) -> None:
        self._hashes = array.array("q")
        self._lookup: frozenset[int] | None = None
        self._added: set[int] = set()

    def add(self, row: dict[str, t.Any]) -> None:
        self._hashes.append(_id_hash(row))

    def seal(self) -> None:
        """Before a further pass (or a page that overlaps rows read): make membership tests fast."""
        self._lookup = frozenset(self._hashes)

    def is_new(self, row: dict[str, t.Any]) -> bool:
        """Whether no page before has seen this row since `seal` (then remember it)."""
        key = _id_hash(row)
        if (self._lookup is not None and key in self._lookup) or key in self._added:
            return False
        self._added.add(key)
        return True


def _id_hash(row: dict[str, t.Any]) -> int:
    """A row's id as 8 bytes (any id: a malformed one may be an object, which has no hash)."""
    row_id = row.get("id")
    return hash(row_id if type(row_id) is str else repr(row_id))


class PageListStream(FanOutStream):
    """A stream read from whole lists every run; ACTIVATE_VERSION when it emitted every row of lists
    known complete."""

    # Row fields whose time, at or after the second a pass began in, means the row was created or
    # changed meanwhile.
    change_fields: tuple[str, ...] = ("created_at", "updated_at")

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._outcome = ListOutcome()
        self._pages_to_read: int | None = None
        self._change_fields = tuple(f for f in self.change_fields if f in self.schema["properties"])

    # What to read and what to emit: the streams say what differs.

    def lists_to_read(self, outcome: ListOutcome) -> t.Iterable[ParentList | None]:
        """The lists this stream reads: its own (None), or one per row of its `parent` (a channel's
        templates), the parent's list read into `outcome`."""
        return self.parent_lists(outcome) if self.parent else [None]

    def keeps(self, row: dict[str, t.Any]) -> bool:
        """Whether a row of the first pass is emitted (all rows here; an incremental stream filters)."""
        return True

    def keeps_under(self, parent: ParentList | None) -> t.Callable[[dict[str, t.Any]], bool]:
        """What `keeps` a list's rows: `keeps`, or for a list read from its own time (a resumed
        fan-out's), the rows whose replication key reaches it."""
        if parent is None or parent.since is None or not self.replication_key:
            return self.keeps
        since, key = parent.since, self.replication_key
        return lambda row: (moment := parse_timestamp(row.get(key))) is None or moment >= since

    def list_done(self, parent: ParentList) -> None:
        """Every record of the list under `parent` was written (a resumable fan-out keeps its place)."""

    def start_reading(self) -> bool:
        """Begin the stream's run; True when it emits every row (so ACTIVATE_VERSION applies)."""
        return True

    def finish_reading(self, *, settled: bool) -> None:
        """The stream's rows are all emitted; `settled` False when a list may not have been read whole."""

    # Requests

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        if isinstance(next_page_token, str):
            return {"cursor": next_page_token, "limit": PAGE_LIMIT}
        return {"page": next_page_token or 1, "limit": PAGE_LIMIT}

    @functools.cached_property
    def _send(self) -> t.Callable[[requests.PreparedRequest, Context | None], requests.Response]:
        return self.request_decorator(self._request)

    def fetch_page(self, context: Context | None, number: int, cursor: str | None = None) -> Page:
        """Request page `number` of a list, or the page `cursor` points at (with the retries, pacing
        and checks of every request)."""
        response = self._send(self.prepare_request(context, cursor or number), context)
        items = list(self.parse_response(response))
        return Page(number, items, read_page(response), served_at(response), response)

    # Reading

    @override
    def read_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        emits_every_row = self.start_reading()
        version = self._begin_table_version() if emits_every_row else None
        outcome = self._outcome = ListOutcome()
        # The progress line's total: a single list's pages, once its first page has told.
        self._pages_to_read = None
        yield from self.read_lists(
            self.lists_to_read(outcome),
            lambda parent: self.read_list(
                parent.context if parent else None, self.keeps_under(parent), outcome=outcome
            ),
            done=self.list_done,
            pages_to_read=lambda: self._pages_to_read,
        )
        if outcome.settled:
            if version is not None:
                self._write_activate_version_message(version)
        else:
            warn_unsettled(self.logger, self.name, outcome)
        self.finish_reading(settled=outcome.settled)

    def all_rows(self, outcome: ListOutcome) -> t.Iterator[dict[str, t.Any]]:
        """Every row with an id of this stream's (single) list, for a stream that reads a list
        under each row (a channel's templates, a campaign's recipients), selected or not."""
        for page in self.read_list(
            None, keeps=lambda row: type(row.get("id")) is str and bool(row["id"]), outcome=outcome
        ):
            yield from page

    def read_list(
        self,
        context: Context | None,
        keeps: t.Callable[[dict[str, t.Any]], bool] | None = None,
        *,
        outcome: ListOutcome,
    ) -> t.Iterator[list[dict[str, t.Any]]]:
        """One list's rows to emit (`keeps`, by default `self.keeps`), a page at a time, until a
        pass finds the list still; `outcome` learns when it never did.

        Runs on a worker when the stream reads several lists.
        """
        keeps = keeps or self.keeps
        seen = SeenIds()
        listing = self.get_url(context)
        previous: ListPass | None = None
        for attempt in range(1, MAX_PASSES + 1):
            reading = ListPass(self._change_fields)
            found = 0
            for page, repeats in self._read_pass(context, reading):
                if repeats and attempt == 1:
                    seen.seal()  # a page over rows already read (the server's page size changed)
                rows = []
                for row in page.items:
                    if attempt == 1 and not repeats:
                        seen.add(row)
                        if keeps(row):
                            rows.append(row)
                    elif seen.is_new(row):
                        if attempt == 1:
                            if keeps(row):
                                rows.append(row)
                        else:
                            rows.append(row)
                            found += 1
                if rows:
                    yield rows
            if reading.future_rows:
                self.report.add(run_report.FUTURE_ROWS, reading.future_rows)
            if attempt > 1:
                self.report.add(run_report.ROWS_FOUND_AGAIN, found)
                self.logger.info(
                    "%s: reading %d found %d rows no earlier reading saw", listing, attempt, found
                )
            reason = reading.moved()
            if reading.stopped:
                outcome.unsettle(listing, reading.stopped)
                return
            if reason is None or (previous is not None and reading.settles_after(previous, found)):
                return
            self.report.add(run_report.LISTS_READ_AGAIN)
            if attempt == MAX_PASSES:
                outcome.unsettle(listing, f"it kept changing through {MAX_PASSES} readings ({reason})")
                return
            self.logger.info(
                "%s changed while it was read (%s): reading it again for rows that slipped between pages",
                listing,
                reason,
            )
            seen.seal()
            previous = reading

    def _read_pass(self, context: Context | None, reading: ListPass) -> t.Iterator[tuple[Page, bool]]:
        """Every page of a list once, in page order, each with whether it repeats rows already read.

        Page-numbered: the first, the planned rest at once, then what the envelopes still call for.
        A cursor: one page after another. A single page: just that.
        """
        first = self.fetch_page(context, 1)
        if next_cursor(first.envelope) is not None:
            yield from self._follow_cursor(context, first, reading)
            return
        sequence = PageSequence(listing=self.get_url(context))
        coverage = Coverage()
        before: set[int] = set()  # the ids of the page before
        last: Page | None = None  # the last page with rows
        concurrent = False  # whether pages were asked for at once (answered in any order)

        def take(page: Page) -> tuple[Page, bool] | None:
            """The page and whether it repeats rows read; None when it is not the page asked for."""
            nonlocal before, last
            if (wrong := sequence.check(page.envelope, page.number)) is not None:
                reading.stopped = wrong
                return None
            reading.add(page)
            overlaps = coverage.add(page)
            ids = {_id_hash(row) for row in page.items}
            if not overlaps and (again := len(ids & before)):
                # Pages that do not overlap share rows: rows moved down the list while it was read
                # (an order by update, or newest first), so one may have moved past the reader too.
                reading.served_twice += again
                overlaps = True
            before = ids
            if page.items:
                last = page
            return page, overlaps

        def pages() -> t.Generator[Page, None, None]:
            nonlocal concurrent
            yield first
            if not is_page_numbered(first.envelope):
                return
            total = page_total(first.envelope)
            # A first page that holds `total` rows is the whole list (a list served whole, whatever
            # page is asked, served more rows than its `limit`: `first.limit` counts them).
            planned = max(1, -(-total // first.limit)) if total is not None else 1
            self._pages_to_read = (self._pages_to_read or 0) + planned
            if planned > 1:
                workers = min(self.pacer.workers_now, planned - 1)
                concurrent = workers > 1
                # Pages are single requests: two per worker queued keep every worker busy.
                rest = fetch_in_order(
                    range(2, planned + 1),
                    lambda n: [self.fetch_page(context, n)],
                    workers=workers,
                    lookahead=2 * workers,
                    wanted=self.pacer.threads_wanted,
                )
                for _, fetched in rest:
                    yield from fetched
                    if coverage.next_page() is None and coverage.ends_at is not None:
                        return  # an empty or last page ended the list: a `total` too large asks no more
            # What the envelopes say now: the list grew, the page size changed, `has_more` was wrong.
            for _ in range(MAX_EXTRA_PAGES):
                if (number := coverage.next_page()) is None:
                    return
                yield self.fetch_page(context, number)

        with contextlib.closing(pages()) as served:  # closing it stops pages fetched ahead
            for page in served:
                if (taken := take(page)) is None:
                    break
                yield taken
        reading.rows = coverage.read
        if reading.stopped is not None:
            if coverage.total is not None and coverage.read_to >= coverage.total:
                reading.stopped = None  # what it served accounts for `total`: the whole list
            else:
                counted = f" of a total of {coverage.total}" if coverage.total is not None else ""
                reading.stopped += f"; the rows it served ({coverage.read}{counted}) may not be all"
                return
        if not is_page_numbered(first.envelope):
            return
        reading.gap = coverage.gap()
        if coverage.next_page() is not None:
            reading.gap = f"the reading stopped after {MAX_EXTRA_PAGES:,} pages beyond those planned"
        reading.withheld = coverage.total is not None and coverage.total - coverage.read >= coverage.limit
        if concurrent and last is not None:
            self._check_last_page(context, reading, last)

    def _check_last_page(self, context: Context | None, reading: ListPass, last: Page) -> None:
        """Ask for the last page again once every page of a reading was answered, for the signs of
        movement an out-of-order reading can miss.

        Pages asked for at once may be answered in any order. Read one after another, a row
        created while the list is read lands on a page answered later (it is seen, stamped at or
        after the reading's start), and a row deleted changes the `total` of the pages after it.
        Answered out of order (page 3 before page 2), a deletion before page 2's boundary and a
        creation between the two answers leave every `total` equal and every row counted, while
        the created row, and the row that slipped onto page 1, are on no page served: nothing
        says the list moved. The last page asked for again after all the others answers for the
        whole reading: a row created, deleted or moved anywhere before it changes its rows or its
        `total` (one request more per reading of a list of several pages).
        """
        again = self.fetch_page(context, last.number)
        reading.add(again)  # its `total`, and rows created or changed since the reading began
        if {_id_hash(row) for row in again.items} != {_id_hash(row) for row in last.items}:
            reading.last_page_moved = True

    def _follow_cursor(
        self, context: Context | None, first: Page, reading: ListPass
    ) -> t.Iterator[tuple[Page, bool]]:
        """A list that offers `next_cursor`: followed one page after another by the messages' own
        paginator (`CursorPaginator`: the documented ends, never the same cursor twice)."""
        paginator = CursorPaginator()
        page = first
        while True:
            reading.add(page)
            reading.rows += len(page.envelope["items"])
            yield page, False
            paginator.advance(page.response)
            if paginator.finished:
                return
            page = self.fetch_page(context, page.number + 1, paginator.current_value)


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


class IncrementalPageListStream(PageListStream, WindowedStream):
    """A list read whole, emitting the rows changed since bookmark - `lookback_hours`.

    One bookmark (the replication key, e.g. `updated_at`) for the stream, moved when the
    stream completes and every list settled, never past the API's clock at the start (see
    `tap_vobiz.incremental`). Read without state, it emits every row: then, as a
    full-table stream does, it ends with ACTIVATE_VERSION, which reflects deletions.
    """

    replication_key = "updated_at"

    @override
    def start_reading(self) -> bool:
        return self.open_window().horizon is None

    @override
    def keeps(self, row: dict[str, t.Any]) -> bool:
        window = self._window
        return window is None or window.includes(parse_timestamp(row.get(self.replication_key or "")))

    @override
    def finish_reading(self, *, settled: bool) -> None:
        if settled:
            self.close_window()
        else:
            self._window = None
