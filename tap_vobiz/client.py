"""The base stream that knows the Vobiz API: base URL, auth, page envelopes, errors, retries."""

from __future__ import annotations

import time
import typing as t
from functools import cached_property
from http import HTTPStatus

import backoff
import requests
from singer_sdk.authenticators import BearerTokenAuthenticator, SimpleAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE, REPLICATION_INCREMENTAL
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_vobiz import run_report
from tap_vobiz.connection import (
    api_authenticator,
    api_session,
    describe_request,
    describe_transient_error,
    redact,
    secret_values,
    tls_failure,
    unreachable_host,
)
from tap_vobiz.decoding import parse_http_date
from tap_vobiz.errors import (
    ONE_LINE_FAILURES,
    AccessDeniedError,
    ApiUnreachableError,
    CredentialsRejectedError,
    EndpointNotFoundError,
    InvalidRequestError,
    NetworkFailedError,
    ParentListError,
    RetriesExhaustedError,
    StreamError,
    TlsFailedError,
)
from tap_vobiz.malformed_fields import field_checks, set_aside_malformed_fields
from tap_vobiz.pagination import CursorPaginator, MalformedPageError, read_page, repaired_texts
from tap_vobiz.record_messages import LeanRecordMessages
from tap_vobiz.run import run_of

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_vobiz.pacing import Pacer
    from tap_vobiz.run import Run
    from tap_vobiz.run_report import RunReport

# What a retry can fix: rate limits, server errors, broken connections and bodies.
TRANSIENT_ERRORS = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
MAX_BACKOFF_SECONDS = 60
LOGGED_BAD_RECORDS = 10  # per stream; the final log line has the full counts


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """The wait a 429/503 asks for: `Retry-After` (seconds or an HTTP date), else the documented
    error body's `error.details.retryAfter` (seconds)."""
    if response is None:
        return None
    if not (value := response.headers.get("Retry-After", "").strip()):
        return _body_retry_after(response)
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    moment = parse_http_date(value)
    return None if moment is None else max(moment.timestamp() - time.time(), 0.0)


def _body_retry_after(response: requests.Response) -> float | None:
    """`{"status": "error", "error": {"code": "RATE_LIMIT_EXCEEDED", "details": {"retryAfter": 1}}}`."""
    wait = _error_details(response).get("retryAfter")
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and 0 <= wait <= 3600:
        return float(wait)
    return None


def stated_limit(response: requests.Response | None) -> float | None:
    """The requests a second a 429's documented body says the API allows:
    `{"error": {"details": {"limitType": "cps", "limit": 10, ...}}}`; None if it says none."""
    details = _error_details(response) if response is not None else {}
    limit = details.get("limit")
    if details.get("limitType") != "cps" or isinstance(limit, bool) or not isinstance(limit, (int, float)):
        return None
    return float(limit) if 0 < limit < 1_000_000 else None


def _error_details(response: requests.Response) -> dict[str, t.Any]:
    """The documented error body's `error.details`, or {}."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, dict) else {}


def error_text(body: object, secrets: t.Iterable[str] = ()) -> str:
    """The API's own words for an error: `{"error": "..."}`, or the platform's `{"error": {"code",
    "message"}}` body; empty when the body has neither. `secrets` are redacted (before the text is
    cut short, which could leave part of one)."""
    error = body.get("error") if isinstance(body, dict) else None
    secrets = tuple(secrets)
    if isinstance(error, str):
        return redact(error, secrets)[:200]
    if isinstance(error, dict):
        words = [
            redact(str(error[key]), secrets)[:200]
            for key in ("code", "message")
            if isinstance(error.get(key), str)
        ]
        return ": ".join(words)
    return ""


class VobizStream(LeanRecordMessages, RESTStream[str | None]):
    """A Vobiz listing: `{"items": [...], "has_more", "next_cursor"}` behind header auth."""

    # Every Vobiz record is keyed by its `id`.
    primary_keys = ("id",)
    # The records' own order is not the replication order (pages are newest first).
    is_sorted = False
    # `post_process` already checks every field's type (values that do not match go to
    # `malformed_fields`) and drops fields the schema does not know, so the SDK's own
    # per-record type conformance would only repeat the work.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # The replication methods a catalog may ask of this stream; another is refused with one line.
    replication_methods: t.ClassVar[frozenset[str]] = frozenset({REPLICATION_FULL_TABLE})
    # Why a catalog's replication method or key cannot be honoured (`TapVobiz` refuses to start).
    catalog_problem: str | None = None

    def __init__(self, tap: Tap) -> None:
        super().__init__(tap)
        self.tap = tap
        # What the run's streams share, handed down by the tap (`tap_vobiz.run`).
        self.run: Run = run_of(tap)
        self.report: RunReport = self.run.report
        self.logger.addFilter(ONE_LINE_FAILURES)
        # The SDK's session, replaced before any request: see `tap_vobiz.connection`.
        self._requests_session = api_session(self.url_base, self.pacer.workers)
        self._field_checks = field_checks(self.schema)
        self._known_fields = frozenset(self.schema["properties"])
        self._unknown_fields_seen: set[str] = set()
        self._bad_records_logged = 0
        self._emitted = run_report.emitted(self.name)

    # Catalogs and table versions

    @override
    def apply_catalog(self, catalog: t.Any) -> None:
        """The SDK's, keeping the replication key the API dictates when a catalog omits it.

        A catalog without `replication_key` (one written by hand, or by a tool that drops
        it) would leave an incremental stream without bookmarks: every run a full read. A
        catalog naming another key, or a method the stream cannot honour, is refused.
        """
        super().apply_catalog(catalog)
        attribute: object = type(self).replication_key
        declared = attribute if isinstance(attribute, str) else None
        method = self.forced_replication_method or (
            REPLICATION_INCREMENTAL if declared else REPLICATION_FULL_TABLE
        )
        if declared and self.replication_key not in {None, declared}:
            self.catalog_problem = (
                f"{self.name} is replicated by {declared!r}, the one timestamp the API gives it; "
                f"the catalog names {self.replication_key!r}"
            )
        self.replication_key = declared
        if method not in self.replication_methods:
            allowed = " or ".join(sorted(self.replication_methods))
            self.catalog_problem = (
                f"{self.name} cannot be replicated {method}: it can be {allowed}; set "
                f"`replication-method` in the catalog (Meltano's `metadata`) to one of those"
            )
        self.forced_replication_method = method if method in self.replication_methods else None

    @property
    def full_table(self) -> bool:
        """Whether this run reads the stream whole and ends it with ACTIVATE_VERSION (the catalog's
        FULL_TABLE, or a stream that has no other method)."""
        return self.replication_method == REPLICATION_FULL_TABLE

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """False for the SDK, which would send ACTIVATE_VERSION before the records; streams send it after
        them (`_begin_table_version`), once everything was read and known complete."""
        return False

    def _begin_table_version(self) -> int | None:
        """A new table version for this run's records, unless `emit_activate_version_messages` is off."""
        if not self.config["emit_activate_version_messages"]:
            return None
        # Milliseconds: two runs in one second still get different versions.
        self._stream_version = time.time_ns() // 1_000_000
        return self._stream_version

    @property
    def pacer(self) -> Pacer:
        """The gate all requests of the run pass (`tap_vobiz.pacing`)."""
        return self.run.pacer

    @property
    @override
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    @override
    def authenticator(self) -> SimpleAuthenticator | BearerTokenAuthenticator:
        return api_authenticator(self.config)

    @property
    @override
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    @property
    @override
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @override
    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict:
        return {"cursor": next_page_token} if next_page_token else {}

    # Responses

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Retry what can pass, fail fast with a fix for what cannot, and check the body."""
        self.report.add(run_report.REQUESTS)
        self.run.deprecation_notices.observe(response, f"GET {self.path}", self.logger)
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status < HTTPStatus.BAD_REQUEST:
            self.run.api_answered = True
        if status == HTTPStatus.UNAUTHORIZED:
            raise CredentialsRejectedError(
                f"Vobiz refused the credentials ({self.response_error_message(response)}): check auth_id "
                "and auth_token (or bearer_token)"
            )
        if status == HTTPStatus.FORBIDDEN:
            raise AccessDeniedError(f"Vobiz denied access ({self.response_error_message(response)})")
        if status == HTTPStatus.NOT_FOUND:
            raise self.not_found(response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise InvalidRequestError(f"Vobiz rejected the request ({self.response_error_message(response)})")
        try:
            read_page(response)
        except MalformedPageError as error:
            raise RetriableAPIError(f"{error} ({describe_request(response)})", response) from error
        if repaired := repaired_texts(response):
            self.report.add(run_report.REPAIRED_TEXTS, repaired)

    def not_found(self, response: requests.Response) -> FatalAPIError:
        """What a 404 on this stream's request means: the API has no such list (a list read under a
        parent's row says otherwise: `tap_vobiz.fan_out`)."""
        return EndpointNotFoundError(f"Vobiz has no such list ({self.response_error_message(response)})")

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """Status, request and the API's own `error` text; never headers or the full body, and
        no secret setting's value (an API may quote the token it was sent)."""
        secrets = secret_values(self.config, self.tap.config_jsonschema)
        detail = ""
        try:
            if text := error_text(response.json(), secrets):
                detail = f": {text}"
        except ValueError:
            pass
        reason = redact(str(response.reason), secrets)
        return f"{response.status_code} {reason} for {describe_request(response)}{detail}"

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The stream's records (`read_records`); a failing endpoint ends this stream alone.

        What was emitted stays emitted; the bookmark and table version stay where they were
        (they move only when `read_records` completes) and no ACTIVATE_VERSION is sent. The
        run logs one line for the stream and goes on with the others (`Run.stream_failed`).
        """
        if (failed := self.run.failed_lists.get(self.name)) is not None:
            # Its list failed earlier in this run, read for a stream under it: it would fail again.
            self.run.stream_failed(self, failed)
            return
        try:
            yield from self.read_records(context)
        except ParentListError as error:
            self.run.stream_failed(self, error.cause, under=error.parent)
        except StreamError as error:
            self.run.stream_failed(self, error)

    def read_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The records of the stream's run (the SDK's `get_records`; streams here override this)."""
        return super().get_records(context)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        for item in read_page(response)["items"]:
            if isinstance(item, dict):
                yield item
            else:
                self.report.add(run_report.DROPPED_WITHOUT_ID)
                self._log_bad_record("Dropping a %s item that is not an object", self.name)

    @override
    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator()

    # Retries

    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Retry transient faults with backoff for at most `max_retry_seconds`, then fail clearly."""
        budget = float(self.config["max_retry_seconds"])
        pacer = self.pacer

        def paced(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            with pacer.turn():
                return func(prepared_request, context)

        def never_reached(error: Exception) -> bool:
            # A host that cannot be resolved, or refuses, before the API ever answered:
            # the configuration is wrong, and waiting will not mend it.
            return self.report.totals()[run_report.REQUESTS] == 0 and unreachable_host(error) is not None

        def not_transient(error: Exception) -> bool:
            return never_reached(error) or tls_failure(error) is not None

        retrying = backoff.on_exception(
            self.backoff_wait_generator,
            TRANSIENT_ERRORS,
            max_tries=None,
            max_time=budget,
            giveup=not_transient,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(paced)

        def request(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            try:
                return retrying(prepared_request, context)
            except TRANSIENT_ERRORS as error:
                if fix := tls_failure(error):
                    raise TlsFailedError(fix) from None
                if never_reached(error):
                    raise ApiUnreachableError(
                        f"Cannot reach the Vobiz API: {unreachable_host(error)}; check api_url"
                    ) from None
                gave_up = f"Gave up after retrying for {budget:.0f}s (max_retry_seconds): "
                if getattr(error, "response", None) is not None:
                    # The API answers, with errors: this endpoint fails, the others may not.
                    raise RetriesExhaustedError(
                        f"{gave_up}{describe_transient_error(error)}. The API is failing; rerun later, "
                        "or raise max_retry_seconds"
                    ) from None
                if self.run.api_answered and self.run.unanswered_stream in {None, self.name}:
                    # The API answered this run: one endpoint too slow (a huge list), not the network.
                    # A second stream that gets no answer either stops the run below.
                    self.run.unanswered_stream = self.name
                    raise RetriesExhaustedError(
                        f"{gave_up}{describe_transient_error(error)}. This endpoint does not answer; "
                        "rerun later, or raise request_timeout or max_retry_seconds"
                    ) from None
                raise NetworkFailedError(
                    f"{gave_up}{describe_transient_error(error)}. The API or the network is failing "
                    "(no answer at all); rerun later, or raise max_retry_seconds"
                ) from None

        return request

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Exponential waits (1, 2, 4 ... 60 s), or what `Retry-After` asks for."""
        exponential = backoff.expo(base=2, factor=1, max_value=MAX_BACKOFF_SECONDS)
        next(exponential)  # prime: backoff.expo yields a None first
        error = yield  # type: ignore[misc]
        while True:
            asked = retry_after_seconds(getattr(error, "response", None))
            wait = next(exponential)
            error = yield (asked if asked is not None else wait)

    @override
    def backoff_handler(self, details: Details) -> None:
        error = details.get("exception")
        response = getattr(error, "response", None)
        if response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            # All requests pause for what the API asked; the retried one adds the backoff's jitter.
            asked = retry_after_seconds(response)
            pause = details.get("wait", 0.0) if asked is None else asked
            self.pacer.slow_down(pause, stated_limit(response))
            self.logger.warning("Rate limited: all requests pause for %.1fs", pause)
        self.report.add(run_report.RETRIES)
        self.logger.warning(
            "Retrying in %.1fs (attempt %d, %.0fs so far): %s",
            details.get("wait", 0.0),
            details.get("tries", 0),
            details.get("elapsed", 0.0),
            redact(
                describe_transient_error(details.get("exception")),
                secret_values(self.config, self.tap.config_jsonschema),
            ),
        )

    # Records

    @override
    def generate_child_contexts(self, record: Record, context: Context | None) -> t.Iterable[Context | None]:
        """None: no stream here has children (messages reads the conversation list itself)."""
        return ()

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Drop records without an id; set aside values that do not match their type."""
        record_id = row.get("id")
        if type(record_id) is not str or not record_id:
            self.report.add(run_report.DROPPED_WITHOUT_ID)
            self._log_bad_record("Dropping a %s record without an id (fields: %s)", self.name, _fields(row))
            return None
        if not self._known_fields.issuperset(row):
            self._drop_unknown_fields(row, row.keys() - self._known_fields)
        if malformed := set_aside_malformed_fields(row, self._field_checks):
            self.report.add(run_report.MALFORMED_FIELDS, len(malformed))
            self._log_bad_record(
                "Kept %s %s with malformed %s; the values as received are in malformed_fields",
                self.name,
                record_id,
                ", ".join(malformed),
            )
        self.report.emitted[self._emitted] += 1
        return row

    def _drop_unknown_fields(self, row: Record, unknown: t.AbstractSet[str]) -> None:
        """Fields the API added that the schema does not declare: dropped, named once per run."""
        for name in unknown:
            del row[name]
        if new := unknown - self._unknown_fields_seen:
            self._unknown_fields_seen |= new
            self.logger.warning(
                "Dropping %s fields not in the schema: %s", self.name, ", ".join(sorted(map(str, new)))
            )

    def _log_bad_record(self, message: str, *args: object) -> None:
        self._bad_records_logged += 1
        if self._bad_records_logged <= LOGGED_BAD_RECORDS:
            self.logger.warning(message, *args)
        elif self._bad_records_logged == LOGGED_BAD_RECORDS + 1:
            self.logger.warning("More bad %s records; see the counts at the end of the run", self.name)


def _fields(row: dict) -> str:
    return ", ".join(sorted(map(str, row)))[:200] or "none"
