"""The one concurrent fetcher: many lists or pages at once, handed back in order, with bounded
look-ahead, and one pace for all requests. Every stream's reads go through it.

The SDK reads one context after another, so a sync costs requests x latency. Here up to
`workers` tasks are fetched at the same time (tasks are the lists under a parent's rows:
a conversation's messages, a channel's templates, a campaign's recipients; or the page
numbers of a page-numbered list), while the SDK's own sync loop (on the main thread) keeps
doing everything else: post-processing, writing RECORD and STATE messages, state. Two rules
keep that safe for any target:

- **Order**: results are handed back in task order, each task's pages in the order they
  were read, exactly as a sequential run would emit them. Workers only run ahead.
- **Memory**: at most `lookahead` tasks (`LOOKAHEAD` = 128, or 2 per worker if more) are in
  flight, each holding at most `buffer` pages (2) plus the one being handed over; a worker
  whose buffer is full waits. However large the account or a conversation's history, the
  tap holds at most 128 x 3 pages of 100 records with the defaults (most conversations are
  one page).
- **Threads**: none while the fetches' time is the interpreter's: the tasks are fetched on
  the consumer's thread, one after another, as long as less than half the time goes on
  waiting for the API (a thread per fetch would only hand the GIL back and forth: at zero
  latency that cost a fifth of the tap's CPU). Then started as they prove useful, not all at once:
  twice as many each time the consumer waits for a result while tasks wait for a thread, up
  to `workers` and to one more than the pacer's places in flight.

A list read on a worker may itself fan its pages out, so threads can nest. How many of
them have a request in flight, and how fast requests go, is the pacer's (`tap_vobiz.pacing`):
every request of every thread passes it.
"""

from __future__ import annotations

import collections
import queue
import threading
import typing as t
from dataclasses import dataclass, field
from time import perf_counter, thread_time

T = t.TypeVar("T")
R = t.TypeVar("R")

_END = object()
# Tasks in flight at most (more with more than 64 workers: two each).
LOOKAHEAD = 128
# Fetching on the consumer's thread stops once this share of the time went on waiting for the
# API (a fetch's wall time less its thread's CPU time), measured over at least
# `MEASURE_SECONDS` and at most `WINDOW_SECONDS` (so that an API slowing down is seen within
# a second).
NETWORK_BOUND = 0.5
MEASURE_SECONDS = 0.01
WINDOW_SECONDS = 1.0


@dataclass
class _Failure:
    error: BaseException


@dataclass
class _Slot(t.Generic[T]):
    """One task in flight: its results, bounded, as the worker produces them."""

    task: T
    results: queue.Queue = field(default_factory=queue.Queue)


def fetch_in_order(
    tasks: t.Iterable[T],
    fetch: t.Callable[[T], t.Iterable[R]],
    *,
    workers: int,
    lookahead: int | None = None,
    buffer: int = 2,
    wanted: t.Callable[[], int] | None = None,
) -> t.Iterator[tuple[T, t.Iterator[R]]]:
    """`(task, results)` for each task, in task order, with `fetch` running on up to `workers` threads.

    The first tasks are fetched on the calling thread, while the time waiting for the API is
    under `NETWORK_BOUND` of the time (`_NetworkWatch`). Then threads start as they prove
    useful (`wanted()`, if given, bounds them further: the pacer's places in flight, plus
    one): one at first, twice as many each time the consumer finds its next result not ready
    while tasks wait that no thread took. When the consumer (writing records) is the
    bottleneck, a few threads keep ahead of it; more would only take turns for the GIL. When
    latency is the bottleneck, the consumer keeps waiting, and threads double until they are
    `workers` (at 300 ms a request, within a second or two, as the places' own slow start).

    The look-ahead is deep (`LOOKAHEAD` tasks) because a long history is paged one request
    after another: while the consumer waits on it, the other workers go on.

    Each `results` must be consumed before the next pair is taken. An exception raised by
    `fetch` is raised from its `results` when reached, so failures surface in task order.
    With `workers` 1 everything runs on the calling thread, one task after another.
    """
    pending = iter(tasks)
    if workers <= 1:
        for task in pending:
            yield task, iter(fetch(task))
        return
    watch = _NetworkWatch()
    for task in pending:
        yield task, watch.timed(fetch, task)
        if watch.network_bound():
            break
    else:
        return
    lookahead = max(lookahead or LOOKAHEAD, 2 * workers)
    todo: queue.Queue[_Slot[T] | None] = queue.Queue()
    cancelled = threading.Event()

    def put(slot: _Slot[T], item: object) -> bool:
        while not cancelled.is_set():
            try:
                slot.results.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def work() -> None:
        while (slot := todo.get()) is not None:
            if cancelled.is_set():
                return  # the consumer stopped: a task still queued is not fetched
            try:
                for result in fetch(slot.task):
                    if not put(slot, result):
                        return
                put(slot, _END)
            except BaseException as error:
                put(slot, _Failure(error))

    threads: list[threading.Thread] = []

    def start_worker() -> None:
        thread = threading.Thread(target=work, name=f"vobiz-fetch-{len(threads)}", daemon=True)
        threads.append(thread)
        thread.start()

    def starved() -> None:
        """The consumer found its next result not ready: while tasks wait that no worker took yet,
        twice the workers (up to `workers`, `wanted()` and the tasks waiting)."""
        most = min(workers, wanted() if wanted else workers)
        for _ in range(min(len(threads), most - len(threads), todo.qsize())):
            start_worker()

    start_worker()
    in_flight: collections.deque[_Slot[T]] = collections.deque()
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < lookahead:
                try:
                    slot = _Slot(next(pending), queue.Queue(maxsize=buffer))
                except StopIteration:
                    exhausted = True
                    break
                in_flight.append(slot)
                todo.put(slot)
            if not in_flight:
                return
            slot = in_flight.popleft()
            yield slot.task, _drain(slot, starved)
    finally:
        cancelled.set()
        for _ in threads:
            todo.put(None)


def _drain(slot: _Slot, starved: t.Callable[[], None]) -> t.Iterator:
    while True:
        try:
            item = slot.results.get_nowait()
        except queue.Empty:
            starved()
            item = slot.results.get()
        if item is _END:
            return
        if isinstance(item, _Failure):
            raise item.error
        yield item


class _NetworkWatch:
    """How much of the time fetches on the consumer's thread spend waiting for the API.

    A fetch's wall time less its thread's CPU time is time off the interpreter: the network,
    the server, or a machine too busy to run it. When that is under `NETWORK_BOUND` of the
    time (fetching and consuming both), the process is bound by its own work, and threads
    would only take turns for the GIL."""

    def __init__(self) -> None:
        self.since = perf_counter()
        self.waited = 0.0

    def timed(self, fetch: t.Callable[[T], t.Iterable[R]], task: T) -> t.Iterator[R]:
        """`fetch(task)`'s results, timed: the call (a fetch may return a list it read) and each
        result. Nothing runs before the first result is asked for, and a failure is raised then."""
        started, cpu = perf_counter(), thread_time()
        try:
            iterator = iter(fetch(task))
        finally:
            self._waited(started, cpu)
        while True:
            started, cpu = perf_counter(), thread_time()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self._waited(started, cpu)
            yield item

    def _waited(self, started: float, cpu: float) -> None:
        self.waited += (perf_counter() - started) - (thread_time() - cpu)

    def network_bound(self) -> bool:
        elapsed = perf_counter() - self.since
        if elapsed < MEASURE_SECONDS:
            return False
        if self.waited >= NETWORK_BOUND * elapsed:
            return True
        if elapsed > WINDOW_SECONDS:
            self.since, self.waited = perf_counter(), 0.0
        return False
