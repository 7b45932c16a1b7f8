"""Lists read under the rows of another list (a conversation's messages, a channel's templates, a
campaign's recipients), many at once, and whether the lists a run read were known complete.

Why not the SDK's `parent_stream_type`: the SDK syncs a child's lists one parent record at a
time inside the parent's sync, with a state per parent (partitions). Here a child reads its
parent's list itself, whether the parent stream is selected or not, fetches `max_workers` lists
at once (`FanOutStream.read_lists`), and keeps one bookmark whatever the number of parents. A
stream with no parent reads its own list the same way (one list: None).
"""

from __future__ import annotations

import dataclasses
import threading
import typing as t

from singer_sdk.exceptions import FatalAPIError
from typing_extensions import override

from tap_vobiz import run_report
from tap_vobiz.client import VobizStream
from tap_vobiz.concurrency import fetch_in_order
from tap_vobiz.errors import EndpointNotFoundError, ListGoneError, ParentListError, StreamError

if t.TYPE_CHECKING:
    import datetime as dt
    import logging

    import requests
    from singer_sdk.helpers.types import Context


@dataclasses.dataclass(frozen=True)
class Parent:
    """The stream a list is read under, one list per row of its own list (a conversation's
    messages, a channel's templates, a campaign's recipients), and the field naming that row."""

    stream: str  # the parent stream's name, e.g. "channels"
    key: str  # the context key and the child's field holding the parent's id, e.g. "channel_id"

    @property
    def noun(self) -> str:
        """What one parent is called in log lines and counters ("channel")."""
        return self.stream.removesuffix("s")

    def context(self, row: t.Mapping[str, t.Any]) -> Context:
        """The context of the list read under a parent row."""
        return {self.key: row["id"]}


@dataclasses.dataclass(frozen=True)
class ParentList:
    """One list of a fan-out: its parent's context, the time it is read from (None: the
    stream's own horizon) and the parent's place in the fan-out's order (`tap_vobiz.resume`)."""

    context: Context
    since: dt.datetime | None
    order: tuple[str, str]


class ListOutcome:
    """Whether the lists one stream's run read (its own, and any parent list) were all known complete."""

    def __init__(self) -> None:
        self.unsettled: list[tuple[str, str]] = []  # (list, why it may not be whole)
        self._lock = threading.Lock()

    def unsettle(self, listing: str, reason: str) -> None:
        with self._lock:
            self.unsettled.append((listing, reason))

    @property
    def settled(self) -> bool:
        return not self.unsettled


def warn_unsettled(logger: logging.Logger, stream: str, outcome: ListOutcome) -> None:
    """The one WARNING of a stream's run whose lists could not be known complete."""
    listing, reason = outcome.unsettled[0]
    more = f" (and {len(outcome.unsettled) - 1} more lists)" if len(outcome.unsettled) > 1 else ""
    logger.warning(
        "%s%s could not be read whole: %s. Rows may be missing, so the %s bookmark and table version "
        "stay where they were and no ACTIVATE_VERSION is sent; the next run reads it again",
        listing,
        more,
        reason,
        stream,
    )


class ParentRows(t.Protocol):
    """A parent stream: every row with an id of its (single) list (`PageListStream.all_rows`)."""

    def all_rows(self, outcome: ListOutcome) -> t.Iterator[dict[str, t.Any]]: ...


class FanOutStream(VobizStream):
    """A stream read as lists: its own, or one under each row of its `parent`, `max_workers` at once."""

    # For a list read under each row of another stream. A 404 on such a list means the parent was
    # deleted after its list was read: the list is skipped, with a warning and a count, and the
    # run goes on.
    parent: t.ClassVar[Parent | None] = None

    @override
    def not_found(self, response: requests.Response) -> FatalAPIError:
        if self.parent:
            return ListGoneError(self.response_error_message(response))
        return super().not_found(response)

    def read_lists(
        self,
        lists: t.Iterable[ParentList | None],
        read: t.Callable[[ParentList | None], t.Iterable[list[dict[str, t.Any]]]],
        *,
        done: t.Callable[[ParentList], None] = lambda parent: None,
        pages_to_read: t.Callable[[], int | None] = lambda: None,
    ) -> t.Iterator[dict[str, t.Any]]:
        """The records of each list (one per parent, or the stream's own: None), `read` on
        `max_workers` threads, emitted in the order of `lists`.

        `read(list)` yields a list's records a page at a time (on a worker thread); the
        records come out exactly as a sequential run emits them (`fetch_in_order`). Under a
        `parent`, a record without the parent's id gets it from its context, a list whose
        parent was deleted meanwhile (404) is skipped, warned about and counted, and `done`
        is told of each list once every record of it was written (a safe point for STATE).
        The progress line counts the lists read of all (under a parent: the parent's list is read
        whole first), else pages of `pages_to_read()`.
        """
        parent = self.parent
        stage = f"{parent.noun}s' {self.name} read" if parent else f"{self.name} pages read"
        lists = list(lists)
        read_so_far = gone_lists = 0
        for item, pages in fetch_in_order(
            lists, read, workers=self.pacer.workers, wanted=self.pacer.threads_wanted
        ):
            try:
                for page in pages:
                    if parent and item:
                        for row in page:
                            if not row.get(parent.key):
                                row[parent.key] = item.context[parent.key]
                    yield from page
                    if not parent:
                        read_so_far += 1
                        self.report.progress(self.logger, stage, read_so_far, pages_to_read())
            except ListGoneError as gone:
                assert parent is not None and item is not None
                self.report.add(run_report.skipped(parent.noun))
                self.logger.warning("Skipping %s %s: %s", parent.noun, item.context[parent.key], gone)
                gone_lists += 1
            else:
                if parent and item:
                    # The SDK wrote every record yielded so far before asking for the next one.
                    done(item)
            if parent and item:
                read_so_far += 1
                self.report.progress(self.logger, stage, read_so_far, len(lists))
        if parent and len(lists) > 1 and gone_lists == len(lists):
            # Every parent just listed, deleted since? No: this account or plan lacks the endpoint.
            raise EndpointNotFoundError(
                f"Vobiz has no such list: all {len(lists)} {parent.noun}s' {self.name} lists answered 404"
            )

    def parent_lists(self, outcome: ListOutcome) -> t.Iterator[ParentList]:
        """A list under each of the parent's rows, whole, in the parent list's order (the parent's
        list's outcome into `outcome`)."""
        assert self.parent is not None
        parent = self.parent
        return (ParentList(parent.context(row), None, ("", row["id"])) for row in self.parent_rows(outcome))

    def parent_rows(self, outcome: ListOutcome) -> t.Iterator[dict[str, t.Any]]:
        """Every row with an id of the parent's list, the parent stream selected or not."""
        assert self.parent is not None
        name = self.parent.stream
        if (failed := self.run.failed_lists.get(name)) is not None:
            raise ParentListError(name, failed)
        parent_stream = t.cast("ParentRows", self.tap.streams[name])
        try:
            yield from parent_stream.all_rows(outcome)
        except StreamError as error:
            self.run.failed_lists[name] = error
            raise ParentListError(name, error) from None
