"""What a run did and what it set aside: counted as it goes, logged periodically and at the end."""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from collections import Counter


def emitted(stream: str) -> str:
    """The counter of a stream's emitted records."""
    return f"{stream} emitted"


def skipped(parent_noun: str) -> str:
    """The counter of lists skipped because their parent (a "channel") was deleted while read."""
    return f"{parent_noun}s skipped (404)"


# Counter names. The end of a run logs the totals of each selected stream's "<stream> emitted",
# REQUESTS and RETRIES, then one line for each other counter that counted something, saying
# what became of those rows (`OUTCOMES`).
REQUESTS = "requests"
RETRIES = "retries"
SKIPPED_CONVERSATIONS = skipped("conversation")
DROPPED_WITHOUT_ID = "records dropped without an id"
MALFORMED_FIELDS = "malformed fields set aside"
UNPARSEABLE_CONTENT = "contents that are not a JSON object"
LISTS_READ_AGAIN = "lists read again (changed while read)"
ROWS_FOUND_AGAIN = "rows found by reading a list again"
FUTURE_ROWS = "rows stamped later than the API's clock"
# Texts that could not be written as UTF-8 as served (bytes that are not UTF-8, a lone surrogate: a
# message cut mid-emoji): kept with U+FFFD in place of the bad part.
REPAIRED_TEXTS = "texts repaired (not UTF-8 as served)"
# Lines of a webhook capture (tap_vobiz/capture_streams.py counts them per stream, "<stream>: <name>").
TORN_LINES = "unfinished capture lines skipped"
UNREADABLE_LINES = "capture lines skipped (not a delivery)"
ENTRIES_WITHOUT_ID = "webhook entries skipped (no id)"
# What became of what a counter counted, in the words of a person reading the end of a run: most
# were kept as received and are harmless; a dropped record is said to be one.
OUTCOMES = {
    DROPPED_WITHOUT_ID: "not loaded (a row without an id cannot be upserted); each was logged above",
    MALFORMED_FIELDS: "kept as received in the record's malformed_fields, the field null; nothing lost",
    UNPARSEABLE_CONTENT: "messages kept with content as received and content_json null; nothing lost",
    LISTS_READ_AGAIN: "read again so that no row that moved between pages was missed; nothing lost",
    ROWS_FOUND_AGAIN: "rows that moved between pages, emitted by the second reading; nothing lost",
    FUTURE_ROWS: "emitted; the bookmark stays at the API's clock, so the next run reads them again",
    REPAIRED_TEXTS: "kept with U+FFFD in place of the bytes that were not UTF-8",
    TORN_LINES: "a receiver stopped mid-write, before acknowledging them, so Vobiz delivers them again",
    UNREADABLE_LINES: "not a delivery a receiver wrote (each was logged above); not loaded",
    ENTRIES_WITHOUT_ID: "a status or call without an id cannot be keyed (each was logged above); not loaded",
}
# skipped(...): lists that answered 404 while the run read them.
SKIPPED_OUTCOME = "deleted while the run read them, so nothing was left to read; harmless"


def outcome(counter: str) -> str:
    """What became of what `counter` counted ("<stream>: <name>" for a counter kept per stream)."""
    name = counter.rpartition(": ")[2]
    return OUTCOMES.get(name, SKIPPED_OUTCOME if name.endswith("skipped (404)") else "see the lines above")


# The first progress line comes this soon, then one per `progress_interval`: whoever started a long
# run sees within seconds that it works and how long it will take, without waiting out an interval.
FIRST_PROGRESS_SECONDS = 5.0


class RunReport:
    """Counters shared by the tap's streams."""

    def __init__(
        self,
        *,
        progress_interval: float,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.counts: Counter[str] = Counter()
        # "<stream> emitted": counted once per record on the thread that emits records (the
        # main thread), without the lock.
        self.emitted: Counter[str] = Counter()
        # The streams whose emitted records the log lines count, in sync order.
        self.streams: list[str] = []
        self._clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self.progress_interval = progress_interval
        self._next_progress = self.started + min(progress_interval, FIRST_PROGRESS_SECONDS)
        self._last_progress = (self.started, 0)
        self._stage: tuple[str, float] | None = None

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def totals(self) -> Counter[str]:
        """Every count: those `add` took from any thread, and the records emitted."""
        with self._lock:
            return self.counts + self.emitted

    def summary(self) -> list[str]:
        """The end of a run, a few lines: records and requests; records per stream; what was set aside."""
        counts = self.totals()
        streams = [emitted(stream) for stream in self.streams]
        lines = [
            f"{self.records_emitted(counts):,} records emitted from {counts[REQUESTS]:,} requests "
            f"({counts[RETRIES]:,} retries) in {self._clock() - self.started:.1f}s",
            "Records: " + (", ".join(f"{counts[emitted(name)]:,} {name}" for name in self.streams) or "none"),
        ]
        for name, count in counts.items():
            if count and name not in {REQUESTS, RETRIES, *streams}:
                lines.append(f"{count:,} {name}: {outcome(name)}")
        return lines

    def records_emitted(self, counts: t.Mapping[str, int]) -> int:
        return sum(counts.get(emitted(stream), 0) for stream in self.streams)

    def progress(self, logger: logging.Logger, stage: str, done: int, total: int | None = None) -> None:
        """Log a progress line when `progress_interval` has passed since the last one.

        Called often (after every page) from the thread that emits records; `done` of
        `total` are the stage's units (conversations listed, or conversations read of
        those to read; `total` None when not known).
        """
        now = self._clock()
        if self._stage is None or self._stage[0] != stage:
            self._stage = (stage, now)
        if self.progress_interval <= 0 or now < self._next_progress:
            return
        self._next_progress = now + self.progress_interval
        counts = self.totals()
        records = self.records_emitted(counts)
        since, records_then = self._last_progress
        self._last_progress = (now, records)
        rate = (records - records_then) / max(now - since, 1e-9)
        if total is None:
            where = f"{done:,} {stage}"
        else:
            total = max(total, done)
            where = f"{done:,} of {total:,} {stage} ({100 * done / max(total, 1):.0f}%)"
            stage_seconds = now - self._stage[1]
            if 0 < done < total and stage_seconds > 0:
                where += f", about {_duration(stage_seconds * (total - done) / done)} left"
        logger.info(
            "Progress: %s; %s emitted; %s requests; %s retries; %s records/s; %s elapsed",
            where,
            ", ".join(f"{counts.get(emitted(stream), 0):,} {stream}" for stream in self.streams),
            f"{counts.get(REQUESTS, 0):,}",
            f"{counts.get(RETRIES, 0):,}",
            f"{rate:,.0f}",
            _duration(now - self.started),
        )

    def log(
        self,
        logger: logging.Logger,
        *,
        completed: bool,
        failed: t.Sequence[str] = (),
        interrupted_by: str | None = None,
    ) -> None:
        """The run's last lines; `failed`: the streams a failing endpoint ended (the others completed);
        `interrupted_by`: the signal that stopped it (SIGINT, SIGTERM), after its final STATE."""
        first, *rest = self.summary()
        if interrupted_by:
            logger.warning(
                "Sync interrupted by %s: %s. A rerun from the last STATE it wrote resumes where it stopped",
                interrupted_by,
                first,
            )
        elif failed:
            logger.warning(
                "Sync FAILED: %d of %d streams failed (%s), the others completed; %s",
                len(failed),
                len(self.streams),
                ", ".join(failed),
                first,
            )
        else:
            logger.info("%s: %s", "Sync completed" if completed else "Sync FAILED", first)
        for line in rest:
            logger.info("%s", line)


def _duration(seconds: float) -> str:
    """`1h02m`, `4m05s` or `12s`."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
