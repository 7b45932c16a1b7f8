"""What the streams of one run share, handed down by the tap: the pacer, the report, the API's clock,
the deprecation notices, and which streams and lists failed.

The streams are built by the tap (`TapVobiz.discover_streams`, the SDK's contract: a stream is
made from its tap alone) and read the run from it (`run_of`), typed by `RunningTap`: the base stream
(`tap_vobiz.client`) knows this small object, never the Tap class that builds it.
"""

from __future__ import annotations

import dataclasses
import typing as t

from tap_vobiz.api_clock import ApiClock
from tap_vobiz.deprecations import DeprecationNotices
from tap_vobiz.errors import EndpointNotFoundError, StreamError

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.streams import Stream

    from tap_vobiz.pacing import Pacer
    from tap_vobiz.run_report import RunReport


@dataclasses.dataclass
class Run:
    """One run's shared objects and failures.

    `check_api_url(stream, error)` is the tap's: told of a 404 before the API ever answered,
    it asks for another list, and raises `ApiNotFoundError` when that is not found either.
    """

    report: RunReport
    pacer: Pacer
    check_api_url: t.Callable[[str, EndpointNotFoundError], None]
    api_clock: ApiClock = dataclasses.field(default_factory=ApiClock)
    deprecation_notices: DeprecationNotices = dataclasses.field(default_factory=DeprecationNotices)
    # The streams an endpoint's failure ended in this run, and why (`stream_failed`).
    failed_streams: dict[str, StreamError] = dataclasses.field(default_factory=dict)
    # The streams whose own list failed in this run (read for them, or for a stream under them):
    # asked for again, it would fail the same way (and wait out the same retries).
    failed_lists: dict[str, StreamError] = dataclasses.field(default_factory=dict)
    # Set by the first response below 400: the API at `api_url` answers.
    api_answered: bool = False
    # The stream that got no answer at all past max_retry_seconds, once the API had answered: it
    # alone ends; a second one ends the run (the network, or the API's host, is down).
    unanswered_stream: str | None = None

    def stream_failed(self, stream: Stream, error: StreamError, *, under: str | None = None) -> None:
        """End one stream for a failing endpoint, with one ERROR line; the run goes on with the others.

        A 404 before the API ever answered may be a wrong `api_url` rather than a missing
        endpoint: one more list is asked for (`check_api_url`), and if it too is not found the
        run ends.
        """
        if isinstance(error, EndpointNotFoundError) and not self.api_answered:
            self.check_api_url(stream.name if under is None else under, error)
        self.failed_streams[stream.name] = error
        if under is None:
            self.failed_lists.setdefault(stream.name, error)
        else:
            stream.logger.error(
                "%s not read: it is read under each of the %s, whose list failed: %s. Its bookmark and "
                "table version stay where they were and the other streams are read; %s",
                stream.name,
                under,
                error,
                error.advice.format(stream=stream.name),
            )
            return
        stream.logger.error(
            "%s not read whole: %s. Its bookmark and table version stay where they were and the other "
            "streams are read; %s",
            stream.name,
            error,
            error.advice.format(stream=stream.name),
        )


class RunningTap(t.Protocol):
    """A tap that hands its streams the run they share."""

    @property
    def run(self) -> Run: ...


def run_of(tap: Tap) -> Run:
    """The run a stream's tap hands it (`TapVobiz.run`)."""
    return t.cast("RunningTap", tap).run
