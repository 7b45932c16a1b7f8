"""The one concurrent fetcher: many lists or pages at once, handed back in order, with bounded
look-ahead, and one pace for all requests. Every stream's reads go through it.

The SDK reads one context after another, so a sync costs requests x latency. Here up to
`max_workers` tasks are fetched at the same time (tasks are the lists under a parent's rows:
a conversation's messages, a channel's templates, a campaign's recipients; or the page
numbers of a page-numbered list), while the SDK's own sync loop (on the main thread) keeps
doing everything else: post-processing, writing RECORD and STATE messages, state. Two rules
keep that safe for any target:

- **Order**: results are handed back in task order, each task's pages in the order they
  were read, exactly as a sequential run would emit them. Workers only run ahead.
- **Memory**: at most `lookahead` tasks (16 per worker) are in flight, each holding at
  most `buffer` pages (2) plus the one being handed over; a worker whose buffer is full
  waits. However large the account or a conversation's history, the tap holds at most
  8 x 16 x 3 pages of 100 records with the defaults (most conversations are one page).

A list read on a worker may itself fan its pages out, so threads can nest.

`RequestPacer` is the one gate every request of every worker passes: at most
`max_workers` requests in flight however the fetches nest, the optional
`max_requests_per_second`, and after a 429 a pause for all workers (for `Retry-After`,
or the backoff wait) and a lower rate that recovers step by step.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
import typing as t
from dataclasses import dataclass, field

T = t.TypeVar("T")
R = t.TypeVar("R")

_END = object()


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
) -> t.Iterator[tuple[T, t.Iterator[R]]]:
    """`(task, results)` for each task, in task order, with `fetch` running on `workers` threads.

    The look-ahead is deep (16 tasks per worker) because a long history is paged one
    request after another: while the consumer waits on it, the other workers go on.

    Each `results` must be consumed before the next pair is taken. An exception raised by
    `fetch` is raised from its `results` when reached, so failures surface in task order.
    With `workers` 1 everything runs on the calling thread, one task after another.
    """
    if workers <= 1:
        for task in tasks:
            yield task, iter(fetch(task))
        return
    lookahead = max(lookahead or workers * 16, workers)
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
            try:
                for result in fetch(slot.task):
                    if not put(slot, result):
                        return
                put(slot, _END)
            except BaseException as error:
                put(slot, _Failure(error))

    threads = [threading.Thread(target=work, name=f"vobiz-fetch-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    in_flight: collections.deque[_Slot[T]] = collections.deque()
    pending = iter(tasks)
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
            yield slot.task, _drain(slot)
    finally:
        cancelled.set()
        for _ in threads:
            todo.put(None)


def _drain(slot: _Slot) -> t.Iterator:
    while (item := slot.results.get()) is not _END:
        if isinstance(item, _Failure):
            raise item.error
        yield item


class RequestPacer:
    """The gate every request passes: a rate cap, and a pause for all after a 429.

    `max_per_second` None means no cap until a 429: then all requests wait out the pause,
    and the rate drops to half of what was being sent, rising by a quarter after every
    `RECOVERY_SECONDS` without a 429 while requests use it (a rate they do not reach
    stays put instead of being lifted, which would let every worker burst at once).
    """

    RECOVERY_SECONDS = 10.0
    WINDOW_SECONDS = 10.0
    MIN_RATE = 0.5

    def __init__(
        self,
        max_per_second: float | None = None,
        clock: t.Callable[[], float] = time.monotonic,
        *,
        max_in_flight: int,
    ) -> None:
        self.max_per_second = max_per_second
        self._in_flight = threading.BoundedSemaphore(max(1, max_in_flight))
        self.rate = max_per_second
        self.clock = clock
        self.next_slot = 0.0
        self.paused_until = 0.0
        self.last_change = 0.0
        self.slowdowns = 0
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self) -> t.Iterator[None]:
        """Hold one of the `max_in_flight` places for a request, once its rate slot has come."""
        with self._in_flight:
            self.wait_turn()
            yield

    def wait_turn(self) -> None:
        """Block until this request may go: its slot under the rate has come, and no pause holds,
        including a pause a 429 announced while it was waiting (then it takes a new slot)."""
        while True:
            with self._lock:
                now = self.clock()
                self._recover(now)
                start = max(now, self.paused_until, self.next_slot)
                if self.rate:
                    self.next_slot = start + 1.0 / self.rate
                if start <= now:
                    self._sent.append(now)
                    while self._sent and self._sent[0] < now - self.WINDOW_SECONDS:
                        self._sent.popleft()
                    return
            time.sleep(start - now)
            with self._lock:
                if self.clock() >= self.paused_until:
                    # The slot came and no pause began meanwhile: go.
                    self._sent.append(start)
                    return
            # A pause began while this request waited: wait it out, then take a new slot.

    def slow_down(self, pause_seconds: float) -> None:
        """A 429: pause every request for `pause_seconds`, and lower the rate."""
        with self._lock:
            now = self.clock()
            self.paused_until = max(self.paused_until, now + pause_seconds)
            # Slots handed out before the pause start over after it, spaced by the new rate.
            self.next_slot = max(self.next_slot, self.paused_until)
            recent = [moment for moment in self._sent if moment >= now - self.WINDOW_SECONDS]
            sending = len(recent) / max(now - recent[0], 0.1) if len(recent) > 1 else self.MIN_RATE
            lowered = max(self.MIN_RATE, sending / 2)
            self.rate = min(self.rate, lowered) if self.rate else lowered
            self.last_change = now
            self.slowdowns += 1

    def _recover(self, now: float) -> None:
        if not self.slowdowns or self.rate is None or now - self.last_change < self.RECOVERY_SECONDS:
            return
        self.last_change = now
        raised = self.rate * 1.25
        if self.max_per_second is not None and raised >= self.max_per_second:
            self.rate = self.max_per_second
        elif raised <= 2 * self._observed_rate(now) + 1:
            self.rate = raised
        # Otherwise the rate does not bind now (requests come slower than it allows): it
        # stays where it is. Lifting it altogether would let every worker go at once as
        # soon as they can, straight into the server's limit again.

    def _observed_rate(self, now: float) -> float:
        recent = [moment for moment in self._sent if moment >= now - self.WINDOW_SECONDS]
        return len(recent) / self.WINDOW_SECONDS
