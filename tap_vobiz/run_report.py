"""What a run did and what it set aside, counted as it goes and logged at the end."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

# Counter names, in the order the final log line gives them.
EMITTED_CONVERSATIONS = "conversations emitted"
EMITTED_MESSAGES = "messages emitted"
REQUESTS = "requests"
RETRIES = "retries"
SKIPPED_CONVERSATIONS = "conversations skipped (404)"
DROPPED_WITHOUT_ID = "records dropped without an id"
MALFORMED_FIELDS = "malformed fields set aside"
UNPARSEABLE_CONTENT = "contents that are not a JSON object"


class RunReport:
    """Counters shared by the tap's streams."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def summary(self) -> str:
        order = [
            EMITTED_CONVERSATIONS,
            EMITTED_MESSAGES,
            REQUESTS,
            RETRIES,
            SKIPPED_CONVERSATIONS,
            DROPPED_WITHOUT_ID,
            MALFORMED_FIELDS,
            UNPARSEABLE_CONTENT,
        ]
        parts = [f"{self.counts[name]} {name}" for name in order]
        return f"{'; '.join(parts)}; {time.monotonic() - self.started:.1f}s"

    def log(self, logger: logging.Logger, *, completed: bool) -> None:
        outcome = "Sync completed" if completed else "Sync FAILED"
        logger.info("%s: %s", outcome, self.summary())
