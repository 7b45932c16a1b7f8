"""How fast the tap asks: the one pacer every request of every worker passes.

Why not the SDK's backoff alone: the SDK retries one request at a time with a fixed
exponential wait, and knows nothing of the other requests. With many workers that means
every worker runs into the same limit on its own, each 429 is answered by one request
waiting, and the rate the others send never changes; and it has no idea how fast the API
allows, so it can only be told (`max_requests_per_second`) or hammer. The account's limit
is not documented, and it moves: other clients of the same account take their share of it
as they come and go. So the pacer learns it, and adapts how many requests are in flight:

- **Rate** (`LearnedRate`): no limit until the first 429 (or `max_requests_per_second`,
  a hard cap). A 429 pauses every request for the wait it asks for (`Retry-After`, the
  body's `retryAfter`), and sets the rate to just under what was being sent when it came
  (over the last two seconds; what the API let through, if less: early in a run, over the
  time since its first request and a second more, as a limit in requests a second lets a
  second's worth through at once), as botocore's adaptive retry mode does with TCP CUBIC's
  curve: back to the last rate that worked quickly, flat around it, then probing above it
  faster and faster, so a limit that rose is found within seconds and one that did not is
  met again only after a while. A 429 body that states the limit (`details.limit`,
  `limitType` `cps`) is taken as it is: the rate starts just under it. Low rates are probed
  more slowly (a 429 every few seconds is a larger share of 5 requests a second than of 50).
- **Requests in flight** (`InFlightLimit`): a slow start, as TCP's: 2 at first, doubled
  each window while workers wait and latency holds, until the first 429 (a limit met at
  once refuses every request then in flight: starting at 8, 6 to 9 of a 30 req/s sync's
  730 requests were refused in its first second, 1 % of them; now 2 or 3). Then enough for
  the rate at the current latency (Little's law: rate x latency, and a margin), grown while
  workers wait for a place and latency stays near its floor, shrunk back when latency
  rises well above its floor (requests queueing at the server, or at our own CPU).
  `max_workers`, when set, bounds it (and there is no slow start). Probing for a higher
  rate is slower the more requests are in flight: each is refused when a probe overshoots.

All workers share both: one rate, one set of places, whatever list, page or fan-out a
request belongs to.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
import typing as t

# Requests in flight when `max_workers` is not set: where the slow start begins, the fewest once it
# ended, and the most.
SLOW_START = 2
ADAPTIVE_START = 8
ADAPTIVE_BOUND = 32
# Set to 1 by benchmarks/run.py to compare with the pacer off (`Pacer(learns=False)`); not a setting.
PACER_OFF_VARIABLE = "TAP_VOBIZ_BENCHMARK_PACER_OFF"


class LearnedRate:
    """The request rate the API allows, learned from its 429s (CUBIC on the measured send rate).

    After a 429 at a measured rate `w`, the rate is `w * (1 + C * (s - K) ** 3)` where `s` is the
    time since the pause ended (slowed down below `SLOW_BELOW` requests a second) and `K` puts
    the start at `BETA * w`. It never goes above twice the rate actually sent (a rate nothing
    uses is not a rate that was shown to work), nor above `cap`.
    """

    BETA = 0.85
    C = 0.0075
    SLOW_BELOW = 20.0
    MIN_RATE = 0.5
    STATED_SHARE = 0.95  # of a limit the 429 states: just under it

    def __init__(self, cap: float | None) -> None:
        self.cap = cap
        self.w_max: float | None = None
        self.start = 0.0
        self.since = 0.0
        self.k = 0.0
        self.pace = 1.0

    def rate(self, now: float, sending: float) -> float | None:
        """Requests a second allowed now (None: no limit), given the rate being sent."""
        if self.w_max is None:
            return self.cap
        elapsed = (now - self.since) * self.pace
        rate = self.start if elapsed < 0 else self.w_max * (1 + self.C * (elapsed - self.k) ** 3)
        rate = min(max(rate, self.start), max(2 * sending, self.w_max))
        return rate if self.cap is None else min(rate, self.cap)

    def throttled(
        self, sending: float, resume_at: float, stated_limit: float | None, latency: float = 0.0
    ) -> None:
        """A 429 while `sending` requests a second, `latency` seconds a request: start again at
        `resume_at`, lower."""
        if stated_limit is not None:
            self.w_max = self.start = max(self.MIN_RATE, stated_limit * self.STATED_SHARE)
        else:
            w_max = max(self.MIN_RATE, sending)
            if self.w_max is not None and w_max < self.w_max:
                # CUBIC's fast convergence: the limit came down (another client took some), so
                # leave room for it sooner.
                w_max = max(self.MIN_RATE, w_max * (1 + self.BETA) / 2)
            self.w_max, self.start = w_max, max(self.MIN_RATE, self.BETA * w_max)
        if self.cap is not None:
            self.w_max, self.start = min(self.w_max, self.cap), min(self.start, self.cap)
        self.since = resume_at
        # A probe past the limit costs a 429 for every request then in flight (rate x latency):
        # the more there are, the more slowly the limit is probed.
        in_flight = self.w_max * latency
        self.pace = min(1.0, max(0.25, self.w_max / self.SLOW_BELOW)) / min(4.0, max(1.0, in_flight / 4))
        # start <= w_max, so the root is of a number >= 0 (a negative one's is complex).
        self.k = (max(0.0, 1 - self.start / self.w_max) / self.C) ** (1 / 3)


class InFlightLimit:
    """How many requests may be in flight at once: adapted to latency, within `[1, bound]`.

    Every `WINDOW_SECONDS` (with at least `WINDOW_REQUESTS` answers) the window's mean latency
    is compared with the lowest seen (`floor`, which creeps up 1 % a window so that a server
    that became slower for good is re-learned): above `QUEUEING` times it (plus 2 ms, for
    latencies of a millisecond) requests are queueing, and the limit shrinks by a tenth (not
    below `start`, once there).
    Otherwise, if requests waited for a place, it grows by a quarter (doubles during the slow
    start), up to what the rate needs at this latency when a rate binds (`needed`).

    Adaptive, it begins with a slow start at `SLOW_START`, which ends at the first 429
    (`throttled`: at least `start` in flight from then) or when latency rises.
    """

    WINDOW_SECONDS = 0.25
    WINDOW_REQUESTS = 8
    QUEUEING = 2.0

    def __init__(self, start: int, bound: int, *, adaptive: bool) -> None:
        self.bound = bound
        self.adaptive = adaptive
        # Never fewer than `start` once there: what the tap always had in flight, safe for the API;
        # the limit shrinks back from what it grew to (a busy machine's latency too would shrink it).
        self.least = min(start, bound)
        self.slow_start = adaptive and self.least > SLOW_START
        self.limit = SLOW_START if self.slow_start else self.least
        self.floor: float | None = None
        self.latency = 0.0  # the last window's mean
        self._latencies: list[float] = []
        self._waited = False
        self._window_start: float | None = None

    def answered(self, now: float, latency: float, rate: float | None) -> None:
        """One request answered after `latency` seconds; adapt at the end of a window (the latency
        is measured whether the limit adapts or not: the rate's probing slows down with it)."""
        self._latencies.append(latency)
        if self._window_start is None:
            self._window_start = now
        if now - self._window_start < self.WINDOW_SECONDS or len(self._latencies) < self.WINDOW_REQUESTS:
            return
        mean = sum(self._latencies) / len(self._latencies)
        self.latency = mean
        self.floor = mean if self.floor is None else min(self.floor * 1.01, mean)
        if self.adaptive and mean > self.QUEUEING * self.floor + 0.002:
            self.slow_start = False
            self.limit = max(min(self.least, self.limit), math.floor(self.limit * 0.9))
        elif self.adaptive and self._waited:
            grown = 2 * self.limit if self.slow_start else self.limit + max(1, self.limit // 4)
            if rate is not None:
                grown = min(grown, max(self.limit, self.needed(rate, mean)))
            self.limit = min(self.bound, grown)
        self._latencies.clear()
        self._waited = False
        self._window_start = now

    def waited(self) -> None:
        """A request found every place taken."""
        self._waited = True

    def throttled(self) -> None:
        """A 429 lowered the rate: the slow start is over, and from now on the rate, not the requests
        in flight, keeps the tap under the limit."""
        if self.slow_start:
            self.slow_start = False
            self.limit = max(self.limit, self.least)

    @staticmethod
    def needed(rate: float, latency: float) -> int:
        """Places that keep `rate` requests a second going at this latency (Little's law, + a margin)."""
        return math.ceil(rate * latency * 1.25) + 1


class Pacer:
    """The gate every request passes: a place among those in flight, its slot under the rate, and
    a pause for all after a 429.

    `max_per_second` is a hard cap (None: none); `max_in_flight` a hard cap on requests in flight
    (None: adaptive, from `ADAPTIVE_START` up to `ADAPTIVE_BOUND`). `learns` False turns the pacer
    off, for the benchmark's comparison only: `ADAPTIVE_START` requests in flight (or
    `max_in_flight`), no learned rate and no pause for all, each 429 retried on its own after
    its wait, as the SDK's backoff does.
    """

    WINDOW_SECONDS = 2.0  # the send rate is measured over the last two seconds

    def __init__(
        self,
        max_per_second: float | None = None,
        clock: t.Callable[[], float] = time.monotonic,
        *,
        max_in_flight: int | None = None,
        learns: bool = True,
    ) -> None:
        self.max_per_second = max_per_second
        self.learns = learns
        self.learned = LearnedRate(max_per_second)
        fixed = max_in_flight if max_in_flight is not None or learns else ADAPTIVE_START
        self.in_flight = InFlightLimit(
            ADAPTIVE_START if fixed is None else fixed,
            ADAPTIVE_BOUND if fixed is None else max(1, fixed),
            adaptive=fixed is None,
        )
        self.clock = clock
        self.last_slot = -math.inf
        self.paused_until = 0.0
        self.slowdowns = 0
        self._taken = 0
        self._sent: collections.deque[float] = collections.deque()
        self._refused: collections.deque[float] = collections.deque()
        self._first_sent: float | None = None
        self._lock = threading.Lock()
        self._turnstile = threading.Lock()
        self._place_freed = threading.Condition(self._lock)

    @property
    def workers(self) -> int:
        """Threads a concurrent fetch may use: as many as there may be requests in flight."""
        return self.in_flight.bound

    def threads_wanted(self) -> int:
        """Threads a concurrent fetch can use now: one more than the places in flight (a thread
        waiting for a place is how the places learn that more are wanted)."""
        return self.in_flight.limit + 1

    @property
    def workers_now(self) -> int:
        """Threads for a short fetch whose every request may prove useless (the pages a list's
        `total` promises): the requests in flight allowed now (at least `ADAPTIVE_START` during the
        slow start: the places grow while the fetch goes on), not the most there may ever be."""
        with self._lock:
            return max(self.in_flight.limit, self.in_flight.least)

    @property
    def rate(self) -> float | None:
        """Requests a second allowed now (None: no limit)."""
        with self._lock:
            now = self.clock()
            return self.learned.rate(now, self._sending(now))

    @contextlib.contextmanager
    def turn(self) -> t.Iterator[None]:
        """Hold a place among the requests in flight for one request, once its rate slot has come."""
        with self._place_freed:
            while self._taken >= self.in_flight.limit:
                # Told each time, not once: a thread whose request was answered takes the place it
                # freed before the thread it woke can, so threads waiting since an earlier window
                # would otherwise go unnoticed, and the places would never grow past their first few.
                self.in_flight.waited()
                self._place_freed.wait()
            self._taken += 1
        sent = None
        try:
            self.wait_turn()
            sent = self.clock()
            yield
        finally:
            with self._place_freed:
                self._taken -= 1
                if sent is not None:
                    now = self.clock()
                    self.in_flight.answered(now, now - sent, self.learned.rate(now, self._sending(now)))
                self._place_freed.notify(max(1, self.in_flight.limit - self._taken))

    def wait_turn(self) -> None:
        """Block until this request may go: one interval of the current rate after the last one, and
        no pause holding. One request waits for its slot at a time (the others wait for it), and
        its slot is worked out again after every sleep: a rate that changed, or a pause a 429
        began meanwhile, applies to it at once (slots booked ahead would go out at the old pace)."""
        with self._turnstile:
            while True:
                with self._lock:
                    now = self.clock()
                    rate = self.learned.rate(now, self._sending(now))
                    interval = 1.0 / rate if rate else 0.0
                    due = max(self.paused_until, self.last_slot + interval)
                    if now >= due:
                        # Spaced from when it went, not from when it was due: a cap holds in every
                        # second, whatever the sleeps overshoot.
                        self.last_slot = now
                        self._sent.append(now)
                        if self._first_sent is None:
                            self._first_sent = now
                        return
                time.sleep(due - now)

    def slow_down(self, pause_seconds: float, stated_limit: float | None = None) -> None:
        """A 429: pause every request for `pause_seconds`, and learn a lower rate (`stated_limit`:
        the requests a second the 429's body says the API allows)."""
        if not self.learns:
            return
        with self._lock:
            now = self.clock()
            # 429s to requests sent before this pause began tell nothing new: one lowering per pause
            # (with many requests in flight, several come back refused at once).
            self._refused.append(now)
            if now >= self.paused_until or stated_limit is not None:
                resume_at = max(self.paused_until, now + pause_seconds)
                sending = min(self._sending(now), self._served(now))
                self.learned.throttled(sending, resume_at, stated_limit, self.in_flight.latency)
                self.slowdowns += 1
                self.in_flight.throttled()
            self.paused_until = max(self.paused_until, now + pause_seconds)

    def _sending(self, now: float) -> float:
        """Requests a second sent over the last `WINDOW_SECONDS`, from their spacing (lock held): a
        count of whole requests in a window is too coarse at a few requests a second."""
        sent = self._sent
        while sent and sent[0] < now - self.WINDOW_SECONDS:
            sent.popleft()
        if len(sent) < 2:
            return len(sent) / self.WINDOW_SECONDS
        return (len(sent) - 1) / max(sent[-1] - sent[0], 0.1 * self.WINDOW_SECONDS)

    def _served(self, now: float) -> float:
        """Requests a second not refused over the last `WINDOW_SECONDS` (or since the first request
        and a second more, if shorter; lock held). At the first 429 of a run, requests went as fast
        as they could: what the API let through, not what was sent, is near its limit; and a limit
        in requests a second lets a second's worth through at once before it refuses any (so 37
        served in the first 0.4 s of a run under 30 a second are 26 a second, not 92)."""
        while self._refused and self._refused[0] < now - self.WINDOW_SECONDS:
            self._refused.popleft()
        span = min(self.WINDOW_SECONDS, now - (self._first_sent or now) + 1.0)
        return max(0, len(self._sent) - len(self._refused)) / span
