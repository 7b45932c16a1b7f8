"""The API's own time, read from its responses: what caps every bookmark (see `tap_vobiz.incremental`)."""

from __future__ import annotations

import datetime as dt
import threading
import typing as t

from tap_vobiz.connection import describe_request
from tap_vobiz.decoding import format_timestamp, served_at

if t.TYPE_CHECKING:
    import logging

    import requests


class ApiClock:
    """The API's own time, from the `Date` header of the first response a reading waits for.

    Without a `Date` header that parses, this machine's clock stands in (one warning per
    run): a bookmark is still never moved past a clock. Each reading that waits is told the
    time once (`wait_for_reading`); what it makes of it (a bookmark later than the clock) is
    its own affair.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[logging.Logger, t.Callable[[dt.datetime], None]]] = []
        self._lock = threading.Lock()
        self._warned_no_date = False

    def wait_for_reading(self, logger: logging.Logger, told: t.Callable[[dt.datetime], None]) -> None:
        """`told(time)` with the API's time at the next response; `logger` says when there is none."""
        with self._lock:
            self._waiting.append((logger, told))

    def observe(self, response: requests.Response) -> None:
        if not self._waiting:
            return
        moment = served_at(response)
        with self._lock:
            if moment is None:
                moment = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
                if not self._warned_no_date and self._waiting:
                    self._warned_no_date = True
                    self._waiting[0][0].warning(
                        "The Vobiz API sent no Date header (%s): bookmarks are capped by this machine's "
                        "clock instead, %s",
                        describe_request(response),
                        format_timestamp(moment),
                    )
            waiting, self._waiting = self._waiting, []
        for _, told in waiting:
            told(moment)
