"""Bookmarks: one per stream, the window a run reads from it, and the API's clock that caps it.

Every incremental stream (conversations, messages, contacts, campaigns, campaign recipients,
call logs) is a `WindowedStream`. Its state holds one bookmark (`replication_key_value`,
RFC 3339 UTC), however many conversations or campaigns the account has. A run reads from its
*horizon*:

    horizon = bookmark - lookback_hours    (never before start_date; start_date on a first run)

What "reading from the horizon" costs differs by stream: the page lists (`tap_vobiz.page_lists`)
are read whole, since the API has no time filter, and emit the rows whose replication key
(`updated_at`, or for conversations the end of their window) reaches the horizon; messages,
which have no `updated_at`, are read only in the conversations whose window reaches it, each
from its newest page back to the first page that reaches past the horizon, and every message
at or after the horizon is emitted again, so the status changes of the lookback window reach
the target (which upserts by `id`).

The bookmark moves only when a stream's sync completes, to the newest timestamp it emitted
but never past the API's clock (its `Date` header) when the stream began reading: a row
created mid-run behind the reader stays ahead of the next horizon. Until then every STATE
message carries the previous bookmark, so a run stopped at any point, even by kill -9, loses
nothing when rerun with the last STATE it emitted.

Why not the SDK's own bookmarks: the SDK keeps a partition per parent for a child stream,
compares timestamps as strings, and moves a bookmark record by record, which is only safe for
a stream sorted ascending (ours are listed newest first). `WindowedStream` replaces the SDK's
per-record hook (`_increment_stream_state`) and writes the bookmark itself when the stream's
records are exhausted. The page lists' own rule (a list must be known complete before its
stream's bookmark moves) is in `tap_vobiz.page_lists`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import typing as t
from dataclasses import dataclass

from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE, REPLICATION_INCREMENTAL
from typing_extensions import override

from tap_vobiz.client import VobizStream
from tap_vobiz.decoding import format_timestamp, minus, parse_setting_timestamp, parse_timestamp

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

CONVERSATION_WINDOW = dt.timedelta(hours=24)


def window_end(conversation: t.Mapping[str, t.Any]) -> dt.datetime | None:
    """When a conversation's window closes: `expires_at`, else 24 h after `started_at`."""
    if (expires := parse_timestamp(conversation.get("expires_at"))) is not None:
        return expires
    if (started := parse_timestamp(conversation.get("started_at"))) is not None:
        return started + CONVERSATION_WINDOW
    return None


@dataclass
class SyncWindow:
    """One stream's run: where reading starts, and the bookmark the run may leave."""

    bookmark: dt.datetime | None
    horizon: dt.datetime | None
    newest: dt.datetime | None = None
    api_time_at_start: dt.datetime | None = None

    @classmethod
    def start(
        cls,
        bookmark: dt.datetime | None,
        *,
        lookback: dt.timedelta,
        start_date: dt.datetime | None,
    ) -> SyncWindow:
        horizon = minus(bookmark, lookback) if bookmark is not None else None
        if start_date is not None and (horizon is None or horizon < start_date):
            horizon = start_date
        return cls(bookmark=bookmark, horizon=horizon)

    def includes(self, moment: dt.datetime | None) -> bool:
        """Whether a record at `moment` is to be emitted (unknown times always are)."""
        return self.horizon is None or moment is None or moment >= self.horizon

    def observe(self, moment: dt.datetime | None) -> None:
        if moment is not None and (self.newest is None or moment > self.newest):
            self.newest = moment

    def next_bookmark(self) -> dt.datetime | None:
        """The bookmark a completed run leaves: never back, never past the API's clock at start."""
        candidate = self.newest
        if candidate is not None and self.api_time_at_start is not None:
            candidate = min(candidate, self.api_time_at_start)
        if self.bookmark is not None and (candidate is None or candidate < self.bookmark):
            return self.bookmark
        return candidate


class WithoutTheSdksStartingLine(logging.Filter):
    """Drops the SDK's `Starting incremental sync of 'x' with bookmark value: ...`.

    The SDK names `start_date` as the bookmark when there is none, and for streams `start_date`
    does not limit (contacts, campaigns), beside the tap's own line (`open_window`: `Reading
    contacts ... no bookmark and start_date does not limit contacts`), which says what is read.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Starting incremental sync of")


_WITHOUT_THE_SDKS_STARTING_LINE = WithoutTheSdksStartingLine()


class WindowedStream(VobizStream):
    """A stream read from its horizon, leaving one bookmark when its sync completes.

    INCREMENTAL by default; a catalog may ask for FULL_TABLE (Meltano's `metadata:
    {stream: {replication-method: FULL_TABLE}}`): then the run reads everything, whatever
    the bookmark and `start_date`, leaves the bookmark as it was, and ends with
    ACTIVATE_VERSION once its lists are known complete.
    """

    replication_methods = frozenset({REPLICATION_INCREMENTAL, REPLICATION_FULL_TABLE})
    # Facts honour `start_date`; a dimension a fact can point at (contacts, campaigns) is read
    # whole on a run without state, whatever `start_date` says.
    honours_start_date = True
    _window: SyncWindow | None = None

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger.addFilter(_WITHOUT_THE_SDKS_STARTING_LINE)

    @property
    @override
    def partitions(self) -> list[dict] | None:
        """Never partitioned: one bookmark for the stream, whatever the number of conversations."""
        return None

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> dt.datetime | None:
        """No signpost: `SyncWindow.next_bookmark` caps the bookmark with the API's clock instead."""
        return None

    def planned_window(self) -> SyncWindow:
        """The window this stream's run will read, from its bookmark, `lookback_hours` and `start_date`."""
        if self.full_table:
            return SyncWindow(bookmark=None, horizon=None)
        return SyncWindow.start(
            self._read_bookmark(),
            lookback=self.lookback,
            start_date=self.start_date,
        )

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=float(self.config["lookback_hours"]))

    @property
    def start_date(self) -> dt.datetime | None:
        """`start_date`, for the streams that honour it."""
        return parse_setting_timestamp(self.config.get("start_date")) if self.honours_start_date else None

    def open_window(self) -> SyncWindow:
        """Start this run's window (`planned_window`); the bookmark moves at `close_window`."""
        window = self.planned_window()
        self.run.api_clock.wait_for_reading(self.logger, functools.partial(self._read_from_clock, window))
        self._window = window
        if self.full_table:
            self.logger.info("Reading all %s: the catalog's replication method is FULL_TABLE", self.name)
        elif window.horizon is None:
            why = "no start_date" if self.honours_start_date else f"start_date does not limit {self.name}"
            self.logger.info("Reading all %s: no bookmark and %s", self.name, why)
        else:
            self.logger.info(
                "Reading %s from %s (bookmark %s, lookback_hours %s, start_date %s)",
                self.name,
                format_timestamp(window.horizon),
                format_timestamp(window.bookmark) if window.bookmark else "none",
                self.config["lookback_hours"],
                self.config.get("start_date") or "none",
            )
        return window

    def _read_from_clock(self, window: SyncWindow, moment: dt.datetime) -> None:
        """The API's time when this stream began reading: it caps the bookmark. A bookmark later than
        the clock (typed by hand, or copied from another environment) would skip every change: the
        window reads from the clock - `lookback_hours` instead, with a warning."""
        window.api_time_at_start = moment
        if window.bookmark is not None and window.bookmark > moment:
            self.logger.warning(
                "The %s bookmark %s is later than the API's clock (%s): reading from the clock minus "
                "lookback_hours instead; check the state (`meltano state get`)",
                self.name,
                format_timestamp(window.bookmark),
                format_timestamp(moment),
            )
            clamped = SyncWindow.start(moment, lookback=self.lookback, start_date=self.start_date)
            window.bookmark, window.horizon = moment, clamped.horizon

    def close_window(self) -> None:
        """The stream's records are all emitted: move its bookmark."""
        window = self._window
        if window is None:
            return
        if not self.full_table and (bookmark := window.next_bookmark()) is not None:
            state = self.stream_state
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = format_timestamp(bookmark)
        self._window = None

    @override
    def _increment_stream_state(self, latest_record: Record, *, context: Context | None = None) -> None:
        """The SDK's per-record state hook: note the timestamp; the state waits for the end."""
        if self._window is not None and self.replication_key:
            self._window.observe(parse_timestamp(latest_record.get(self.replication_key)))

    @override
    def validate_response(self, response: requests.Response) -> None:
        super().validate_response(response)
        self.run.api_clock.observe(response)

    def _read_bookmark(self) -> dt.datetime | None:
        """The stream's bookmark; state from per-conversation versions becomes its oldest bookmark."""
        state = self.stream_state
        if partitions := state.pop("partitions", None):
            values = [parse_timestamp(p.get("replication_key_value")) for p in partitions]
            known = [v for v in values if v is not None]
            # A partition without a bookmark was never read: start over for all of them.
            oldest = min(known) if known and len(known) == len(values) else None
            self.logger.info("Merged %d per-conversation bookmarks into one", len(partitions))
            if oldest is not None:
                state["replication_key"] = self.replication_key
                state["replication_key_value"] = format_timestamp(oldest)
            else:
                state.pop("replication_key_value", None)
        value = state.get("replication_key_value")
        if value is None:
            return None
        moment = parse_timestamp(value)
        key = state.get("replication_key")
        if moment is None or key not in {None, self.replication_key}:
            wrong = (
                f"{value!r} is not an RFC 3339 timestamp"
                if moment is None
                else f"it is a bookmark of {key!r}, not of {self.replication_key!r}"
            )
            self.logger.warning(
                "Ignoring the %s bookmark in the state (%s): this run reads all %s, a full read as on a "
                "first run; to avoid that, set a valid bookmark (`meltano state set`) or clear the state "
                "(`meltano state clear`)",
                self.name,
                wrong,
                self.name,
            )
            # Said once: the next reading of this state finds no bookmark, as on a first run.
            state.pop("replication_key_value")
            return None
        return moment
