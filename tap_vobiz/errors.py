"""The failures a user can act on, each with a one-line message that says what to fix."""

from __future__ import annotations

import logging
import sys

from singer_sdk.exceptions import FatalAPIError, MapExpressionError
from typing_extensions import override


class VobizError(Exception):
    """A failure that ends the run with its message alone: no traceback, exit code 1."""


class StreamError(VobizError):
    """A failure of one endpoint: it ends the stream that read it (and the streams read under it),
    never the run. The other streams are read; the run exits 1 with a summary (`TapVobiz.sync_all`).

    `advice` says what the user can do about it, after what happened.
    """

    advice = "rerun later"


class CredentialsRejectedError(VobizError, FatalAPIError):
    """401: no stream can be read until the settings change."""


class AccessDeniedError(StreamError, FatalAPIError):
    """403: the credentials are good, but may not read this endpoint (a permission, or a plan)."""

    advice = (
        "give the token permission to read it, or deselect the stream "
        "(meltano select tap-vobiz --exclude {stream} '*')"
    )


class EndpointNotFoundError(StreamError, FatalAPIError):
    """404 on a stream's own list, while the API answers others: this account or plan lacks it."""

    advice = (
        "this account or plan may not have the endpoint: deselect the stream "
        "(meltano select tap-vobiz --exclude {stream} '*')"
    )


class ApiNotFoundError(VobizError):
    """404 from two of the API's lists and no other answer yet: `api_url` points at no Vobiz API."""


class InvalidRequestError(StreamError, FatalAPIError):
    """400 and the other 4xx the tap cannot recover from."""

    advice = "rerun later; if it persists, report it with this line"


class ApiUnreachableError(VobizError):
    """The configured host cannot be resolved, or refuses connections, before it ever answered."""


class TlsFailedError(VobizError):
    """A TLS handshake that can never succeed: a certificate that does not verify against the CA bundle
    in use, or a protocol error (`https://` against a plain-http server)."""


class RetriesExhaustedError(StreamError):
    """An endpoint kept answering with a transient error (5xx, 429, a broken body) past
    `max_retry_seconds`."""


class NetworkFailedError(VobizError):
    """No answer at all (connections failing, timeouts) past `max_retry_seconds`: every stream would wait
    as long, so the run ends."""


class CursorLoopError(StreamError, RuntimeError):
    """The API handed back a cursor this listing has already followed."""


class ParentListError(StreamError):
    """The list of the stream a stream is read under (`parent`) failed: `cause` says how."""

    def __init__(self, parent: str, cause: StreamError) -> None:
        super().__init__(f"the {parent} list failed: {cause}")
        self.parent = parent
        self.cause = cause


class ListGoneError(FatalAPIError):
    """404 on a list under a parent (a conversation's messages, a channel's templates): parent deleted."""


class OneLineFailures(logging.Filter):
    """Drops the SDK's generic "An unhandled error occurred while syncing" for a VobizError
    or a failing stream map.

    The SDK logs that line for any exception leaving a stream's sync; for these the tap
    logs their own message once (`TapVobiz.sync_all`), which says what to fix.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        in_flight = sys.exc_info()[1]
        return not (
            isinstance(in_flight, (VobizError, MapExpressionError))
            and record.msg.startswith("An unhandled error occurred")
        )


ONE_LINE_FAILURES = OneLineFailures()
