"""The pacer: the rate it learns from 429s, the cap it keeps, the requests in flight it allows."""

from __future__ import annotations

import heapq
import threading
import time
import typing as t

import pytest

from tap_vobiz.pacing import ADAPTIVE_BOUND, InFlightLimit, LearnedRate, Pacer
from tests.tap_runner import emulator_config, run_tap
from vobiz_emulator.rate_limit import TokenBucket
from vobiz_emulator.server import Faults


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """A clock that `time.sleep` moves on, instead of sleeping."""
    fake = FakeClock()
    monkeypatch.setattr(time, "sleep", lambda seconds: setattr(fake, "now", fake.now + seconds))
    return fake


def _send_against(
    pacer: Pacer, clock: FakeClock, phases: list[tuple[float, float]]
) -> list[tuple[float, bool]]:
    """One worker sending through the pacer (5 ms a request) to a token bucket of a second's
    requests whose limit follows `phases` ((requests a second, seconds)); a 429 asks for 1 s.
    When each request went, and whether it was served."""
    bucket = TokenBucket(
        per_second=phases[0][0],
        schedule=[(sum(s for _, s in phases[:i]), rate) for i, (rate, _) in enumerate(phases) if i],
        started=clock.now,
    )
    end = clock.now + sum(seconds for _, seconds in phases)
    sent = []
    while clock.now < end:
        pacer.wait_turn()
        served = bucket.take(clock.now)
        sent.append((clock.now, served))
        clock.now += 0.005
        if not served:
            pacer.slow_down(1.0)
    return sent


def _served_rate(sent: list[tuple[float, bool]], start: float, end: float) -> float:
    return sum(1 for moment, served in sent if served and start <= moment < end) / (end - start)


def test_the_rate_rises_again_after_a_429_once_the_limit_rises(clock):
    pacer = Pacer(None, clock=clock)
    started = clock.now

    sent = _send_against(pacer, clock, [(20, 30), (60, 30)])

    refused = [moment - started for moment, served in sent if not served]
    assert refused and refused[0] < 2  # the unknown limit was found at once...
    assert 17 <= _served_rate(sent, started + 10, started + 30) <= 21  # ...and kept to
    # Once the limit rose to 60, within 10 s the pacer sends at 90 % of it or more, and keeps there.
    assert _served_rate(sent, started + 40, started + 60) >= 0.9 * 60
    assert len(refused) <= 0.01 * len(sent) + 5


def test_a_limit_stated_in_the_429_is_taken_just_under_it(clock):
    pacer = Pacer(None, clock=clock)
    for _ in range(100):  # 50 requests a second
        pacer.wait_turn()
        clock.now += 0.02

    pacer.slow_down(1.0, stated_limit=10)

    before = clock.now
    pacer.wait_turn()
    assert clock.now - before == pytest.approx(1.0)  # the pause, for every request
    moments = []
    for _ in range(10):
        pacer.wait_turn()
        moments.append(clock.now)
    # 9.5 a second: spaced 1/9.5 s, not at the 50 a second measured before the 429.
    assert moments[-1] - moments[0] == pytest.approx(9 / 9.5, rel=0.05)


def test_the_rate_never_exceeds_max_requests_per_second(clock):
    pacer = Pacer(5, clock=clock)
    moments = []
    for _ in range(200):  # 40 s at the cap, with 429s that state a higher limit
        pacer.wait_turn()
        moments.append(clock.now)
        if len(moments) % 50 == 0:
            pacer.slow_down(0.5, stated_limit=100)
    for index, start in enumerate(moments):  # (spaced 0.2 s: the sixth lands 1.0 s on, give or take a float)
        assert sum(1 for moment in moments[index:] if moment < start + 0.999) <= 5


def test_requests_in_flight_grow_while_latency_holds_and_shrink_when_it_rises():
    limit = InFlightLimit(8, ADAPTIVE_BOUND, adaptive=True)
    now = 0.0
    for _ in range(40):  # workers wait for a place, and latency stays at 300 ms
        limit.waited()
        for _ in range(limit.limit):
            now += 0.3 / limit.limit
            limit.answered(now, 0.3, None)
    assert limit.limit == ADAPTIVE_BOUND

    for _ in range(40):  # requests queue at the server: latency five times its floor
        limit.waited()
        for _ in range(limit.limit):
            now += 1.5 / limit.limit
            limit.answered(now, 1.5, None)
    assert limit.limit == 8  # back to where it started, what the tap always had in flight


def test_requests_in_flight_grow_when_threads_queue_for_a_place():
    # The pacer as the fan-out uses it: 32 threads, each holding a place for a 50 ms request. A
    # thread whose request was answered took the place it freed before the thread it woke could,
    # and only a thread that found every place taken as it arrived counted as waiting: the places
    # stayed at 4 (a 300 ms API read at 13 requests a second for its first 10 s; no limit at 25 ms
    # lost a second). Now they double to the bound within a few windows.
    pacer = Pacer(None)
    deadline = time.monotonic() + 15
    reached = threading.Event()

    def work() -> None:
        while not reached.is_set() and time.monotonic() < deadline:
            with pacer.turn():
                time.sleep(0.05)
            if pacer.in_flight.limit >= ADAPTIVE_BOUND:
                reached.set()

    threads = [threading.Thread(target=work) for _ in range(ADAPTIVE_BOUND)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pacer.in_flight.limit == ADAPTIVE_BOUND


def test_requests_in_flight_grow_only_to_what_the_rate_needs():
    limit = InFlightLimit(8, ADAPTIVE_BOUND, adaptive=True)
    now = 0.0
    for _ in range(40):
        limit.waited()
        for _ in range(limit.limit):
            now += 0.3 / limit.limit
            limit.answered(now, 0.3, 40.0)
    # 40 requests a second at 300 ms: 12 in flight, and a margin.
    assert limit.limit == InFlightLimit.needed(40.0, 0.3) == 16


def test_a_far_api_gets_more_requests_in_flight_and_max_workers_caps_them(start_emulator, tmp_path):
    emulator = start_emulator(240, 240, days=5)
    emulator.state.faults = Faults(latency_ms=300)

    adaptive = run_tap(emulator_config(emulator), tmp_path)
    most_adaptive = emulator.state.stats["max_in_flight"]
    emulator.state.stats.clear()
    capped = run_tap(emulator_config(emulator, max_workers=6), tmp_path)

    assert adaptive.returncode == capped.returncode == 0
    assert adaptive.ids("messages") == capped.ids("messages")
    assert 8 < most_adaptive <= ADAPTIVE_BOUND
    assert emulator.state.stats["max_in_flight"] == 6


def test_a_limit_the_429_states_is_met_with_few_429s(start_emulator, tmp_path):
    emulator = start_emulator(300, 300, days=5)
    emulator.state.faults = Faults(latency_ms=20)
    emulator.state.rate_limit = TokenBucket(per_second=25, body=True, retry_after=None)

    run = run_tap(emulator_config(emulator), tmp_path)

    assert run.returncode == 0
    report = emulator.state.rate_limit.report()
    assert len(report["served"]) >= 301
    # The first 429 states the limit: after it, the tap keeps under it but for a probe now and then.
    first = report["refused"][0]
    later = [moment for moment in report["refused"] if moment > first + 1.5]
    assert len(later) <= 3, report["refused"]


def test_429s_at_a_rate_near_the_floor_keep_the_rate_a_number():
    # A fault run's 429s drove the learned rate down to its floor; the limit coming down once more
    # (CUBIC's fast convergence) put it under the floor, and the cube root of a negative number made
    # the rate complex: TypeError in the next request (a fresh-clone CI run of test_faults).
    learned = LearnedRate(cap=None)
    for sending in (4.0, 1.0, 0.5, 0.4, 0.3):
        learned.throttled(sending, resume_at=0.0, stated_limit=None)
        for now in (0.0, 1.0, 30.0):
            rate = learned.rate(now, sending)
            assert isinstance(rate, float) and rate >= LearnedRate.MIN_RATE


def _sync_against(
    pacer: Pacer, clock: FakeClock, monkeypatch, limit: float, requests: int, latency: float
) -> list[tuple[float, bool]]:
    """A sync of `requests` requests through the pacer, as many in flight as it allows, each
    answered `latency` s after it went, by a token bucket of a second's requests at `limit` a
    second (a 429 asks for 1 s, and its request goes again after it). When each went, and whether
    it was served. Answers due while the pacer sleeps arrive during the sleep, as they would."""
    bucket = TokenBucket(per_second=limit, started=clock.now)
    in_flight: list[tuple[float, int, t.Any, bool]] = []
    again: list[float] = []  # when a refused request may go again
    sent: list[tuple[float, bool]] = []

    def answer_until(moment: float) -> None:
        while in_flight and in_flight[0][0] <= moment:
            clock.now, _, turn, served = heapq.heappop(in_flight)
            turn.__exit__(None, None, None)
            if not served:
                pacer.slow_down(1.0)
                again.append(clock.now + 1.0)
        clock.now = max(clock.now, moment)

    monkeypatch.setattr(time, "sleep", lambda seconds: answer_until(clock.now + seconds))
    while sum(1 for _, served in sent if served) < requests:
        waiting = requests - sum(1 for _, served in sent if served) - len(in_flight)
        ready = waiting - sum(1 for moment in again if moment > clock.now)
        if len(in_flight) >= pacer.in_flight.limit or ready <= 0:
            if len(in_flight) >= pacer.in_flight.limit:
                pacer.in_flight.waited()
            answer_until(in_flight[0][0] if in_flight else min(again))
            again = [moment for moment in again if moment > clock.now]
            continue
        turn = pacer.turn()
        turn.__enter__()
        served = bucket.take(clock.now)
        sent.append((clock.now, served))
        heapq.heappush(in_flight, (clock.now + latency, len(sent), turn, served))
    return sent


def test_a_fixed_limit_met_at_once_costs_few_429s_and_is_used_in_full(clock, monkeypatch):
    # The benchmark's fixed limit: 30 a second, 25 ms a request, 726 requests (24.2 s at best).
    # Starting with 8 requests in flight, 7 were refused at the first 429 and the rate then
    # restarted above the limit (the burst the API let through, counted over 0.1 s): 1.5 % 429s.
    pacer = Pacer(None, clock=clock)
    started = clock.now

    sent = _sync_against(pacer, clock, monkeypatch, limit=30, requests=726, latency=0.025)

    refused = [moment - started for moment, served in sent if not served]
    assert sum(1 for moment in refused if moment < 1.0) <= 3, refused
    assert len(refused) <= 0.01 * len(sent), refused
    assert clock.now - started <= 1.05 * 726 / 30


def test_requests_in_flight_start_slow_and_double_until_the_first_429():
    limit = InFlightLimit(8, ADAPTIVE_BOUND, adaptive=True)
    now, seen = 0.0, []
    for _ in range(3):  # workers wait for a place, latency holds at 25 ms
        seen.append(limit.limit)
        limit.waited()
        for _ in range(21):
            now += 0.0125
            limit.answered(now, 0.025, None)
    assert seen == [2, 4, 8]
    limit.throttled()
    before = limit.limit
    limit.waited()
    for _ in range(21):
        now += 0.0125
        limit.answered(now, 0.025, None)
    assert limit.limit == before + before // 4  # a quarter more a window after a 429, not twice as many
    # With max_workers set there is no slow start: the cap is what the user allowed.
    assert InFlightLimit(6, 6, adaptive=False).limit == 6


def test_a_page_list_gets_its_threads_during_the_slow_start():
    # The places grow while a list's pages are fetched: its threads are not the 2 of the first moment.
    assert Pacer(None).workers_now == 8
    assert Pacer(None, max_in_flight=3).workers_now == 3


def test_a_pacer_turned_off_neither_pauses_nor_learns_nor_adapts(clock):
    # The benchmark's comparison (TAP_VOBIZ_BENCHMARK_PACER_OFF): each 429 is its own request's
    # business, as with the SDK's backoff alone.
    pacer = Pacer(None, clock=clock, learns=False)
    pacer.wait_turn()
    pacer.slow_down(5.0, stated_limit=10)
    before = clock.now
    for _ in range(50):
        pacer.wait_turn()
    assert clock.now == before  # no pause, no rate
    assert pacer.rate is None and pacer.slowdowns == 0
    assert pacer.in_flight.limit == 8 and not pacer.in_flight.adaptive
