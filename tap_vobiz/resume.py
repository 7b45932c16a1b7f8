"""Resuming an interrupted fan-out: one small position in the state per stream, not a list of done parents.

A first sync (or a full re-read) of a large account spends nearly all its requests in two
fan-outs: each conversation's messages and each campaign's recipients. Their bookmark moves
only when the stream completes (`tap_vobiz.incremental`), so a run that dies at 90 % would
start over. The SDK resumes only a stream sorted by its replication key (it keeps the last
value emitted as the bookmark); ours are read one parent at a time, each list newest first,
so no record says how far a run got. Partitions (the SDK's state per parent, or Airbyte's
per slice) would make the state grow with the account.

Instead a fan-out reads its parents in a deterministic order, by (the parent's time, id):
conversations by `started_at`, campaigns by `created_at`. At safe points (every record of
the parents so far written to stdout, never ahead) and at most every `state_interval_seconds`,
its state carries, beside the bookmark it had when the run began, one object:

    "resume": {"after": ["2026-11-02T10:00:00Z", "<id>"], "horizon": ..., "clock": ...,
               "newest": ..., "version": ...}

`after`: the order key of the last parent whose records were all written (every parent up to
it was); `horizon` and `clock`: the interrupted run's horizon and the API's clock when it
began; `newest`: the newest replication-key value it emitted; `version`: its table version.

A run that finds this object (`ResumePlan`) reads the parents after the position as the
interrupted run would have (from its horizon), and the parents up to it as an incremental
run from the interrupted run's start would (from its clock - lookback_hours: those that can
have changed since, newest page back to that horizon), so it ends complete and current. Its
records carry the same table version; the bookmark it leaves follows the rule of
any run (the newest timestamp either run emitted, never past the API's clock when it began),
and the object is cleared: every key of it `null` (`cleared`), not the key left out, since
Meltano merges a run's STATEs onto the stored state (`--full-refresh`, `--state-strategy
merge`) and a merge never removes a key. Nor `"resume": null`: Meltano's merge of a later
position (an object) onto a null fails. A resumed run that is itself interrupted keeps the first run's
horizon, clock and version, and the furthest position either reached.

A position is void, and the run reads as if none had been kept (one line says why), when
its clock is older than the stream's bookmark (a finished run's position that a merge kept),
or when a setting that decides the table version or the horizon changed since the
interrupted run (`emit_activate_version_messages`, `start_date`, `lookback_hours`,
`receipt_window_days`: `settings`): the resumed run could not send ACTIVATE_VERSION for a
version under which every live row was emitted. Nor does a position pass a parent whose own
list did not settle (a campaign's recipients that kept moving): once a list of the run is
not known complete, the position stays where it was, so the next run reads that parent again.

Written only when the parent list was read known complete (a conversation that slipped
between the list's pages would otherwise count as done); a FULL_TABLE run does not resume
(its table version must cover every row of one reading). The page-numbered lists themselves
are not resumed by page number: their offsets move as rows are created and deleted, so an
interrupted list is read again whole (a few requests per hundred rows).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import typing as t

from typing_extensions import override

from tap_vobiz.decoding import format_timestamp, minus, parse_timestamp
from tap_vobiz.fan_out import FanOutStream, ListOutcome, ParentList
from tap_vobiz.incremental import SyncWindow, WindowedStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

RESUME_KEY = "resume"
SETTINGS_KEY = "settings"
# The settings that decide a fan-out's table version or horizon: a position kept under others is void.
DECIDING_SETTINGS = ("emit_activate_version_messages", "start_date", "lookback_hours", "receipt_window_days")
OrderKey = tuple[str, str]


def cleared(kept: object, extra_keys: t.Iterable[str]) -> dict[str, None]:
    """The resume object of a stream that completed: every key a position may have had, null."""
    # Every value null, none an object: Meltano's merge of a later position fails on a null object.
    keys = {*_FIELDS, SETTINGS_KEY, *extra_keys, *(kept if isinstance(kept, dict) else ())}
    return dict.fromkeys(sorted(keys))


def order_key(row: t.Mapping[str, t.Any], time_field: str) -> OrderKey:
    """A parent's place in the fan-out's order: its time (normalized; unknown first) and id."""
    moment = parse_timestamp(row.get(time_field))
    return (format_timestamp(moment) if moment is not None else "", str(row["id"]))


@dataclasses.dataclass
class Resume:
    """Where an interrupted fan-out got to (see the module docstring)."""

    after: OrderKey | None
    horizon: dt.datetime | None
    clock: dt.datetime | None
    newest: dt.datetime | None
    version: int | None
    # What a stream keeps besides (a campaign fan-out: the fingerprints of its quiet campaigns).
    extra: dict[str, t.Any] = dataclasses.field(default_factory=dict)

    def to_state(self) -> dict[str, t.Any]:
        return {
            "after": list(self.after) if self.after is not None else None,
            "horizon": _text(self.horizon),
            "clock": _text(self.clock),
            "newest": _text(self.newest),
            "version": self.version,
            **self.extra,
        }

    def finished_horizon(self, lookback: dt.timedelta, start_date: dt.datetime | None) -> dt.datetime:
        """Where a resumed run reads the parents this run finished from: the horizon of an incremental
        run from this run's start (its clock - lookback_hours). Whatever changed after this run read
        a parent is stamped later than the clock; the lookback re-reads the status changes of
        messages (which have no `updated_at`) as any rerun does."""
        assert self.clock is not None
        finished = minus(self.clock, lookback)
        for floor in (start_date, self.horizon):
            if floor is not None and finished < floor:
                finished = floor
        return finished

    @classmethod
    def from_state(cls, value: object) -> Resume:
        """The object a run wrote; ValueError saying what is wrong with one that is not."""
        if not isinstance(value, dict):
            raise ValueError("it is not an object")
        after = value.get("after")
        if after is not None and not (
            isinstance(after, list) and len(after) == 2 and all(isinstance(part, str) for part in after)
        ):
            raise ValueError(f"its position {after!r} is not [time, id]")
        moments = {}
        for name in ("horizon", "clock", "newest"):
            text = value.get(name)
            moments[name] = parse_timestamp(text)
            if text is not None and moments[name] is None:
                raise ValueError(f"its {name} {text!r} is not an RFC 3339 timestamp")
        if moments["clock"] is None:
            raise ValueError("it has no clock")
        version = value.get("version")
        if version is not None and (type(version) is not int or version <= 0):
            raise ValueError(f"its version {version!r} is not a positive integer")
        return cls(
            after=(after[0], after[1]) if after is not None else None,
            horizon=moments["horizon"],
            clock=moments["clock"],
            newest=moments["newest"],
            version=version,
            extra={k: v for k, v in value.items() if k not in _FIELDS},
        )


_FIELDS = frozenset({"after", "horizon", "clock", "newest", "version"})


def _text(moment: dt.datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


@dataclasses.dataclass
class ResumePlan:
    """Which parents a fan-out reads and from when, and the resume object it keeps as it goes.

    `previous` is the object found in the state (a resumed run) or None; `window` the run's
    own (its horizon is read when a list is planned: the API's clock may have moved it);
    `finished_horizon` where the parents the interrupted run finished are read from.
    """

    previous: Resume | None
    window: SyncWindow
    finished_horizon: dt.datetime | None
    interval: float
    position: OrderKey | None = None
    # False until the parent list was read known complete (`ResumableFanOut.plan_lists`), and again
    # once a list of the run is not known complete (the position must not pass it).
    resumable: bool = False
    outcome: ListOutcome | None = None
    _written_at: float = dataclasses.field(default_factory=time.monotonic)

    @classmethod
    def start(
        cls,
        previous: Resume | None,
        *,
        window: SyncWindow,
        lookback: dt.timedelta,
        start_date: dt.datetime | None,
        interval: float,
    ) -> ResumePlan:
        if previous is None:
            return cls(None, window, None, interval)
        finished = previous.finished_horizon(lookback, start_date)
        return cls(previous, window, finished, interval, position=previous.after)

    @property
    def horizon(self) -> dt.datetime | None:
        """Where the parents not yet finished are read from: the interrupted run's horizon, or this run's."""
        return self.previous.horizon if self.previous is not None else self.window.horizon

    def since(self, order: OrderKey) -> dt.datetime | None:
        """Where the list of the parent at `order` is read from."""
        previous = self.previous
        done = previous is not None and previous.after is not None and order <= previous.after
        return self.finished_horizon if done else self.horizon

    def lists(
        self,
        rows: t.Iterable[t.Mapping[str, t.Any]],
        *,
        time_field: str,
        context: t.Callable[[t.Mapping[str, t.Any]], Context],
        reads: t.Callable[[t.Mapping[str, t.Any], dt.datetime | None], bool],
    ) -> list[ParentList]:
        """The lists to read, in the fan-out's order: each parent `reads` keeps, from its `since`.

        Holds one small entry per parent to read (the parent list is read whole first, so
        that the order is the same whatever the API's page order).
        """
        planned = []
        for row in rows:
            order = order_key(row, time_field)
            since = self.since(order)
            if reads(row, since):
                planned.append(ParentList(context(row), since, order))
        planned.sort(key=lambda parent: parent.order)
        return planned

    def done(self, parent: ParentList) -> bool:
        """A parent's records are all written: True when a resumable STATE is due."""
        if self.position is None or parent.order > self.position:
            self.position = parent.order
        now = time.monotonic()
        if now - self._written_at < self.interval:
            return False
        self._written_at = now
        return True

    def resume(self, *, clock: dt.datetime | None, newest: dt.datetime | None, version: int | None) -> Resume:
        """The object to keep in the state now: this run's position, the first run's horizon,
        clock and version."""
        previous = self.previous
        if previous is not None:
            newest = max((m for m in (previous.newest, newest) if m is not None), default=None)
            return Resume(self.position, previous.horizon, previous.clock, newest, previous.version)
        return Resume(self.position, self.horizon, clock, newest, version)

    def stored(self) -> dict[str, t.Any]:
        """What the resumed run's state kept besides its position (empty on a run that resumes nothing)."""
        return self.previous.extra if self.previous is not None else {}


class ResumableFanOut(FanOutStream, WindowedStream):
    """A stream read under each row of its `parent` that resumes where an interrupted run stopped.

    The stream makes its lists with `plan_lists` (the parent list read whole, in order, each
    list with the time it is read from) and reads them with `read_lists(..., done=self.list_done)`.
    """

    # The parent's field that orders the fan-out ("started_at", "created_at").
    order_field: t.ClassVar[str]
    # The keys `resume_extra` adds to the resume object (cleared with the others).
    extra_keys: t.ClassVar[tuple[str, ...]] = ()
    _plan: ResumePlan | None = None

    @override
    def open_window(self) -> SyncWindow:
        """The run's window, and the resume object of an interrupted run if the state has one."""
        window = super().open_window()
        previous = None if self.full_table else self._previous_run()
        self._plan = ResumePlan.start(
            previous,
            window=window,
            lookback=self.lookback,
            start_date=self.start_date,
            interval=float(self.config["state_interval_seconds"]),
        )
        if previous is not None:
            window.observe(previous.newest)
            self.logger.info(
                "Resuming the %s of an interrupted run: the %ss after %s read from %s, those up to it "
                "from %s (what can have changed since that run began, %s)",
                self.name,
                self.parent.noun if self.parent else "parent",
                " ".join(previous.after) if previous.after else "the start",
                _text(previous.horizon) or "the beginning",
                _text(self._plan.finished_horizon) or "the beginning",
                _text(previous.clock),
            )
        return window

    def _previous_run(self) -> Resume | None:
        value = self.stream_state.get(RESUME_KEY)
        if value is None or (isinstance(value, dict) and not any(v is not None for v in value.values())):
            return None  # none kept, or cleared by a run that completed
        try:
            previous = Resume.from_state(value)
        except ValueError as problem:
            self.logger.warning(
                "Ignoring the %s resume position in the state (%s): this run reads the %s as if the "
                "interrupted run had not begun",
                self.name,
                problem,
                self.name,
            )
            self.stream_state[RESUME_KEY] = cleared(value, self.extra_keys)
            return None
        if (void := self._void_because(previous)) is not None:
            self.logger.warning(
                "The %s of an interrupted run are not resumed: %s. This run reads them as if that run "
                "had not begun",
                self.name,
                void,
            )
            self.stream_state[RESUME_KEY] = cleared(value, self.extra_keys)
            return None
        return previous

    def _void_because(self, previous: Resume) -> str | None:
        """Why a kept position cannot be resumed from (None when it can)."""
        bookmark = parse_timestamp(self.stream_state.get("replication_key_value"))
        if bookmark is not None and previous.clock is not None and previous.clock < bookmark:
            return (
                f"its run began at {_text(previous.clock)}, older than the {self.name} bookmark "
                f"{_text(bookmark)} (a finished run's position, kept by a merge of states)"
            )
        try:
            kept = json.loads(previous.extra[SETTINGS_KEY])
        except (KeyError, TypeError, ValueError):
            return None  # kept by a release that did not record them
        if not isinstance(kept, dict):
            return None
        now = json.loads(self._deciding_settings())
        changed = [name for name in DECIDING_SETTINGS if name in kept and kept[name] != now[name]]
        if changed:
            return "; ".join(f"{name} changed (was {kept[name]!r}, now {now[name]!r})" for name in changed)
        return None

    def _deciding_settings(self) -> str:
        """The settings a position is kept under (`DECIDING_SETTINGS`), as one JSON text (a flat value:
        a merge of states onto a cleared object must not meet an object)."""
        values = {name: self.config.get(name) for name in DECIDING_SETTINGS}
        return json.dumps(
            {k: v if v is None or isinstance(v, (bool, str)) else float(v) for k, v in values.items()},
            sort_keys=True,
        )

    @override
    def _begin_table_version(self) -> int | None:
        """The interrupted run's table version when resuming (the two runs' records are one reading)."""
        plan = self._plan
        if plan is not None and plan.previous is not None and plan.previous.version is not None:
            if not self.config["emit_activate_version_messages"]:
                return None
            self._stream_version = plan.previous.version
            return self._stream_version
        return super()._begin_table_version()

    def plan_lists(
        self,
        rows: t.Iterable[t.Mapping[str, t.Any]],
        reads: t.Callable[[t.Mapping[str, t.Any], dt.datetime | None], bool],
        outcome: ListOutcome,
    ) -> list[ParentList]:
        """The lists under the parent's `rows` that `reads(row, since)` keeps, in the fan-out's order.

        Positions are kept only when the parent list (read into `outcome`) is known complete: a
        parent that slipped between its pages would otherwise count as done on a rerun.
        """
        plan = self._plan
        assert plan is not None and self.parent is not None
        lists = plan.lists(rows, time_field=self.order_field, context=self.parent.context, reads=reads)
        plan.resumable = outcome.settled and not self.full_table
        plan.outcome = outcome
        return lists

    def list_done(self, parent: ParentList) -> None:
        """Every record under `parent` is written: keep the position, and write a STATE when due."""
        plan = self._plan
        if plan is not None and plan.outcome is not None and not plan.outcome.settled:
            plan.resumable = False  # a list not known complete: the position must not pass it
        if plan is None or not plan.resumable or not plan.done(parent):
            return
        if self.keep_position():
            self.tap.state_writer.write_state(self.tap_state)

    def keep_position(self) -> bool:
        """Put the furthest position reached in the stream's state; False when there is none to keep.

        Called when a STATE is due, and when a signal stops the run (`TapVobiz.sync_all`), so that
        the STATE the run ends with resumes from the last parent finished, not from the last
        position `state_interval_seconds` let through.
        """
        plan, window = self._plan, self._window
        if plan is None or window is None or not plan.resumable or plan.position is None:
            return False
        resume = plan.resume(
            clock=window.api_time_at_start, newest=window.newest, version=self._stream_version
        )
        if resume.clock is None:
            return False  # no response has told the API's time yet
        resume.extra = {**self.resume_extra(resume), SETTINGS_KEY: self._settings_of(plan)}
        self.stream_state[RESUME_KEY] = resume.to_state()
        return True

    def _settings_of(self, plan: ResumePlan) -> str:
        """The deciding settings a position is kept under: the interrupted run's, when resuming (they
        are this run's too, or the position would have been void)."""
        kept = plan.previous.extra.get(SETTINGS_KEY) if plan.previous is not None else None
        return kept if isinstance(kept, str) else self._deciding_settings()

    def resume_extra(self, resume: Resume) -> dict[str, t.Any]:
        """What this stream keeps in the resume object besides the position (nothing by default)."""
        return {}

    @override
    def close_window(self) -> None:
        """The stream completed: its bookmark moves and the resume object is cleared (`cleared`: a merge
        of states keeps a key left out)."""
        super().close_window()
        self.stream_state[RESUME_KEY] = cleared(self.stream_state.get(RESUME_KEY), self.extra_keys)
        self._plan = None
