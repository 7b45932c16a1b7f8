"""The failures a user can act on, each with a one-line message that says what to fix."""

from __future__ import annotations

import logging
import sys

from singer_sdk.exceptions import FatalAPIError, MapExpressionError
from typing_extensions import override


class VobizError(Exception):
    """A failure that ends the run with its message alone: no traceback, exit code 1."""


class CredentialsRejectedError(VobizError, FatalAPIError):
    """401/403: retrying cannot help, the settings must change."""


class InvalidRequestError(VobizError, FatalAPIError):
    """400 and other 4xx the tap cannot recover from."""


class ApiUnreachableError(VobizError):
    """The configured host cannot be resolved, or refuses connections, before it ever answered."""


class CertificateNotTrustedError(VobizError):
    """The server's TLS certificate does not verify against the CA bundle in use."""


class RetriesExhaustedError(VobizError):
    """A transient fault outlasted the retry budget (`max_retry_seconds`)."""


class CursorLoopError(VobizError, RuntimeError):
    """The API handed back a cursor this listing has already followed."""


class PageLoopError(VobizError, RuntimeError):
    """A page-numbered list served a page other than the one asked for, or the same rows again."""


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
