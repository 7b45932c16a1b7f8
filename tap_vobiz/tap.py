"""The Vobiz tap: its settings and its streams."""

from __future__ import annotations

import contextlib
import copy
import decimal
import ipaddress
import json
import math
import sys
import typing as t
from urllib.parse import urlsplit

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import ConfigValidationError, MapExpressionError
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import _ConfigInput

from tap_vobiz.account_streams import CannedResponsesStream, ChannelsStream, ContactsStream, TemplatesStream
from tap_vobiz.call_streams import CallLogsStream
from tap_vobiz.campaign_streams import DEFAULT_RECEIPT_WINDOW_DAYS, CampaignRecipientsStream, CampaignsStream
from tap_vobiz.client import DEFAULT_MAX_RETRY_SECONDS, VobizStream
from tap_vobiz.concurrency import DEFAULT_MAX_WORKERS, RequestPacer
from tap_vobiz.conversation_streams import ConversationsStream, MessagesStream
from tap_vobiz.decoding import parse_setting_timestamp
from tap_vobiz.deprecations import DeprecationNotices
from tap_vobiz.errors import VobizError
from tap_vobiz.incremental import DEFAULT_LOOKBACK_HOURS, ApiClock
from tap_vobiz.input_files import InputFileError, read_catalog_file, read_config_files, read_state_file
from tap_vobiz.output import SingerOutput
from tap_vobiz.run_report import DEFAULT_PROGRESS_INTERVAL, RunReport

if t.TYPE_CHECKING:
    from types import FrameType

DEFAULT_API_URL = "https://api.vobiz.ai/api/v1/messaging"
DEFAULT_METRICS_LOG_LEVEL = "WARNING"


STREAM_TYPES: tuple[type[VobizStream], ...] = (
    ConversationsStream,
    MessagesStream,
    ChannelsStream,
    TemplatesStream,
    ContactsStream,
    CannedResponsesStream,
    CampaignsStream,
    CampaignRecipientsStream,
    CallLogsStream,
)


class TapVobiz(Tap):
    """Vobiz WhatsApp: conversations, messages, channels, templates, contacts, campaigns and call logs."""

    name = "tap-vobiz"
    message_writer_class = SingerOutput

    config_jsonschema = th.PropertiesList(
        th.Property(
            "auth_id",
            th.StringType,
            title="Auth ID",
            description="Vobiz account id (`MA_...`), sent as `X-Auth-ID`. "
            "Needed with `auth_token` unless `bearer_token` is set.",
        ),
        th.Property(
            "auth_token",
            th.StringType,
            secret=True,
            title="Auth Token",
            description="Vobiz auth token, sent as `X-Auth-Token`. Needed with `auth_id` "
            "unless `bearer_token` is set.",
        ),
        th.Property(
            "bearer_token",
            th.StringType,
            secret=True,
            title="Bearer Token",
            description="A Vobiz JWT, sent as `Authorization: Bearer ...` instead of "
            "`auth_id`/`auth_token`. Takes precedence when both are set.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            title="API URL",
            description="Base URL of the Vobiz messaging API. Must use https, except on a "
            "loopback host (a local emulator).",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start Date",
            description="Extract only the facts from this time on: messages created at or after it, "
            "conversations whose window ends at or after it, campaign recipients and call logs "
            "updated at or after it. Applies to the first run (no state) and to `--full-refresh`; "
            "reruns start at bookmark minus `lookback_hours`, never before it. Dimensions that facts "
            "point at (contacts, campaigns, channels, templates, canned responses) are extracted whole "
            "whatever it says, and on a run without state end with ACTIVATE_VERSION, so deletions "
            "reach the warehouse. RFC 3339, e.g. `2026-01-01T00:00:00Z`. Unset: the whole history.",
        ),
        th.Property(
            "lookback_hours",
            th.NumberType,
            default=DEFAULT_LOOKBACK_HOURS,
            title="Lookback Hours",
            description="How far before the bookmark each rerun reads again, so that status "
            "changes (sent, delivered, read, failed) of messages already extracted reach the "
            "target, and conversations that closed since arrive closed. Messages have no "
            "`updated_at`: a change to a message older than this is not seen. The default, 72, "
            "covers a conversation's 24-hour window plus two days of late delivery and read "
            "receipts (a message sent on Friday evening read on Monday). 0 re-reads only the "
            "bookmark's own second.",
        ),
        th.Property(
            "receipt_window_days",
            th.NumberType,
            default=DEFAULT_RECEIPT_WINDOW_DAYS,
            title="Receipt Window Days",
            description="How long after a campaign finished (or last changed) its recipients are read "
            "again on every run, for late delivery and read receipts. The default, 30, is how long "
            "WhatsApp keeps trying to deliver a message. A finished campaign older than that costs no "
            "request, unless its counters changed since the last run (then it is read once).",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=100,
            title="Page Size",
            description="Messages requested per page (`limit`), 1 to 100.",
        ),
        th.Property(
            "max_workers",
            th.IntegerType,
            default=DEFAULT_MAX_WORKERS,
            title="Max Workers",
            description="Conversations whose messages are fetched at the same time, 1 to 64 (1: "
            "one after another). Output order and state are the same whatever the value.",
        ),
        th.Property(
            "max_requests_per_second",
            th.NumberType,
            title="Max Requests Per Second",
            description="Cap on requests per second across all workers. Unset: no cap until "
            "a 429, which pauses every worker (for `Retry-After`) and lowers the rate.",
        ),
        th.Property(
            "request_timeout",
            th.IntegerType,
            default=60,
            title="Request Timeout",
            description="Seconds to wait for one HTTP response before retrying it.",
        ),
        th.Property(
            "max_retry_seconds",
            th.IntegerType,
            default=DEFAULT_MAX_RETRY_SECONDS,
            title="Max Retry Seconds",
            description="How long one request may be retried after transient faults (429, 5xx, "
            "timeouts, dropped connections, malformed bodies), with exponential backoff and "
            "jitter or the wait `Retry-After` asks for, before the run fails.",
        ),
        th.Property(
            "progress_interval_seconds",
            th.NumberType,
            default=DEFAULT_PROGRESS_INTERVAL,
            title="Progress Interval Seconds",
            description="How often a long sync logs its progress (conversations read of those "
            "to read, messages, requests, retries, records per second). 0 turns it off.",
        ),
        th.Property(
            "metrics_log_level",
            th.StringType,
            default=DEFAULT_METRICS_LOG_LEVEL,
            allowed_values=["DEBUG", "INFO", "WARNING", "ERROR"],
            title="Metrics Log Level",
            description="Level of the Singer SDK's METRIC log lines (two per HTTP request). The "
            "default, WARNING, leaves them out, so a run's log shows the tap's own progress and "
            "summary lines; INFO logs them again.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            title="User Agent",
            description="User-Agent header sent with every request.",
        ),
        th.Property(
            "emit_activate_version_messages",
            th.BooleanType,
            default=True,
            title="Emit ACTIVATE_VERSION Messages",
            description="End each stream that emitted every row (channels, templates and canned "
            "responses on every run; contacts, campaigns and the other incremental streams on a run "
            "without state, e.g. `--full-refresh`, or when the catalog asks for FULL_TABLE) with an "
            "ACTIVATE_VERSION message, so that targets which support it (target-postgres, "
            "target-snowflake) delete or soft-delete (`_sdc_deleted_at`) the rows Vobiz no longer "
            "lists. Sent only after the stream's lists were read and known complete.",
        ),
    ).to_dict()

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with `--state` and `--catalog` taken as paths that `invoke` reads.

        As `click.File`s a missing file is a usage error (exit 2) and the text is read
        unchecked; as paths every mistake in them is one line (`tap_vobiz.input_files`).
        """
        command = super().get_singer_command()
        for param in command.params:
            if param.name in {"state", "catalog"}:
                param.type = click.STRING
        return command

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> _ConfigInput:
        """The `--config` files (and `ENV`), read and checked before anything else runs."""
        with cls._one_line_input_errors():
            config, parse_env = read_config_files(value)
        return _ConfigInput(config=config, parse_env=parse_env)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: str | None = None,
        catalog: str | None = None,
    ) -> None:
        """The SDK's sync invocation, with the state and catalog files checked before the tap starts."""
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        with cls._one_line_input_errors():
            state_dict = read_state_file(state) if state is not None else None
            stream_names = {stream_type.name for stream_type in STREAM_TYPES}  # type: ignore[misc]
            catalog_dict = read_catalog_file(catalog, stream_names) if catalog is not None else None
        tap = cls(
            config=config.config,
            state=state_dict,
            catalog=catalog_dict,
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        tap.sync_all()

    @classmethod
    @contextlib.contextmanager
    def _one_line_input_errors(cls) -> t.Iterator[None]:
        try:
            yield
        except InputFileError as error:
            cls.logger.error("%s", error)
            raise SystemExit(1) from None

    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:
        """Settings from `TAP_VOBIZ_*` variables (`--config ENV`, or Meltano's env), of every kind.

        The SDK converts integers, booleans and objects but leaves a number (`lookback_hours`,
        `max_requests_per_second`, ...) a string that validation then refuses, and a value
        that does not convert ends in a traceback. Here every kind converts, and a value
        that does not is one line naming the variable.
        """
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        properties = schema["properties"]
        as_text = {"properties": {name: {"type": ["string", "null"]} for name in properties}}
        config, errors = {}, []
        for name, text in parse_environment_config(as_text, cls._env_var_prefix).items():
            kind = _setting_kind(properties[name])
            try:
                config[name] = _setting_from_text(text, kind)
            except ValueError:
                variable = cls._env_var_prefix + name.upper().replace("-", "_")
                shown = "" if kind in {"object", "array"} else f" (got {text!r})"
                errors.append(f"{variable} must be {_KIND_WORDS[kind]}{shown}")
        if errors:
            raise ConfigValidationError("Invalid tap-vobiz config: " + "; ".join(errors), errors=errors)
        return config

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Add the rules a JSON schema states poorly: credentials, ranges, dates; never echo a secret.

        The SDK's messages quote the value (`987654321012 is not of type 'string' in
        config['auth_token']`): for a secret setting, whatever its type, the message names
        the setting alone.
        """
        secrets = [name for name, prop in self.config_jsonschema["properties"].items() if prop.get("secret")]
        errors = [_without_secret(error, secrets) for error in super()._validate_config(raise_errors=False)]
        errors += config_errors(self.config)
        if errors and raise_errors:
            raise ConfigValidationError("Invalid tap-vobiz config: " + "; ".join(errors), errors=errors)
        return errors

    def discover_streams(self) -> list[VobizStream]:
        return [stream_type(self) for stream_type in STREAM_TYPES]

    @property
    def api_clock(self) -> ApiClock:
        """The API's time, read from its responses; caps the bookmarks (see `tap_vobiz.incremental`)."""
        if not hasattr(self, "_api_clock"):
            self._api_clock = ApiClock()
        return self._api_clock

    @property
    def pacer(self) -> RequestPacer:
        """The gate all requests pass: `max_requests_per_second`, and 429 pauses for all workers."""
        if not hasattr(self, "_pacer"):
            rate = self.config.get("max_requests_per_second")
            self._pacer = RequestPacer(
                float(rate) if rate is not None else None,
                max_in_flight=int(self.config.get("max_workers", DEFAULT_MAX_WORKERS)),
            )
        return self._pacer

    @property
    def deprecation_notices(self) -> DeprecationNotices:
        """The endpoints whose `Deprecation`/`Sunset` headers were warned about in this run."""
        if not hasattr(self, "_deprecation_notices"):
            self._deprecation_notices = DeprecationNotices()
        return self._deprecation_notices

    @property
    def report(self) -> RunReport:
        """The run's counters, shared by the streams and logged when the run ends."""
        if not hasattr(self, "_report"):
            self._report = RunReport(
                progress_interval=float(
                    self.config.get("progress_interval_seconds", DEFAULT_PROGRESS_INTERVAL)
                )
            )
        return self._report

    def sync_all(self) -> None:  # type: ignore[misc]
        """Sync, then log the run's counts; known failures end it with one line and exit 1.

        The SDK marks `sync_all` final; this extends it (the SDK's sync runs unchanged
        inside) because it is the one place that sees the whole run end, well or not.
        """
        self.report.streams = [name for name, stream in self.streams.items() if stream.selected]
        self.metrics_logger.setLevel(str(self.config.get("metrics_log_level", DEFAULT_METRICS_LOG_LEVEL)))
        if problems := [
            p for s in self.streams.values() if s.selected and (p := getattr(s, "catalog_problem", None))
        ]:
            self.logger.error("Cannot use the catalog: %s", "; ".join(problems))
            raise SystemExit(1)
        self._syncing = True
        try:
            super().sync_all()
        except TerminatedBySignal as stop:
            # Here, not in the signal handler: the handler may have interrupted the writer
            # in the middle of a RECORD (its buffer in use); now the writer is free.
            self._state_writer.write_state(self.state)
            self.report.log(self.logger, completed=False)
            raise SystemExit(128 + stop.signum) from None
        except VobizError as error:
            self.logger.error("%s", error)
            self.report.log(self.logger, completed=False)
            raise SystemExit(1) from None
        except MapExpressionError as error:
            # A user's stream_maps expression, not a fault of the tap: one line, no traceback.
            cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
            self.logger.error("Invalid stream_maps: %s%s", error, cause)
            self.report.log(self.logger, completed=False)
            raise SystemExit(1) from None
        except Exception:
            self.report.log(self.logger, completed=False)
            raise
        self.report.log(self.logger, completed=True)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT stop: a sync ends writing the STATE (`sync_all`), and exits 128+signal.

        The SDK writes the STATE from the handler itself, which fails when the signal
        lands while a RECORD is being written to a slow target (`BufferError`: the
        writer's buffer is in use) and loses the final STATE.
        """
        if getattr(self, "_syncing", False):
            raise TerminatedBySignal(signum)
        self.report.log(self.logger, completed=False)
        sys.exit(128 + signum)


class TerminatedBySignal(BaseException):
    """SIGTERM/SIGINT during a sync: unwinds it (past the SDK's error handling) to `sync_all`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def config_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with a config, one short sentence each, without echoing secrets."""
    errors = []
    has_pair = bool(config.get("auth_id")) and bool(config.get("auth_token"))
    if not has_pair and not config.get("bearer_token"):
        errors.append("set auth_id and auth_token, or bearer_token")
    page_size = config.get("page_size", 100)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 100:
        errors.append(f"page_size must be an integer from 1 to 100 (got {page_size!r})")
    for name in ("request_timeout", "max_retry_seconds"):
        value = config.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(f"{name} must be a positive number of seconds (got {value!r})")
    workers = config.get("max_workers", DEFAULT_MAX_WORKERS)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        errors.append(f"max_workers must be an integer from 1 to 64 (got {workers!r})")
    rate = config.get("max_requests_per_second")
    if rate is not None and (not _is_number(rate) or rate <= 0):
        errors.append(f"max_requests_per_second must be a positive number (got {rate!r})")
    interval = config.get("progress_interval_seconds", DEFAULT_PROGRESS_INTERVAL)
    if not _is_number(interval) or interval < 0:
        errors.append(f"progress_interval_seconds must be a number of seconds, 0 or more (got {interval!r})")
    window = config.get("receipt_window_days", DEFAULT_RECEIPT_WINDOW_DAYS)
    if not _is_number(window) or not 0 <= window <= 3650:
        errors.append(f"receipt_window_days must be a number of days from 0 to 3650 (got {window!r})")
    lookback = config.get("lookback_hours", DEFAULT_LOOKBACK_HOURS)
    if not _is_number(lookback) or not 0 <= lookback <= 24 * 366:
        errors.append(f"lookback_hours must be a number of hours from 0 to 8784 (got {lookback!r})")
    start_date = config.get("start_date")
    if start_date is not None and parse_setting_timestamp(start_date) is None:
        errors.append(f"start_date is not an RFC 3339 date-time (got {start_date!r})")
    if error := api_url_error(config.get("api_url", DEFAULT_API_URL)):
        errors.append(error)
    return errors


def _without_secret(error: str, secrets: t.Iterable[str]) -> str:
    """A validation message, or, when it is about a secret setting, one that does not quote its value."""
    for name in secrets:
        if f"config[{name!r}]" in error:
            return f"{name} must be a string (the value given is not shown: it is a secret)"
    return error


_KIND_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a JSON array",
    "string": "a string",
}
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _setting_kind(prop: dict) -> str:
    """A setting's JSON type, the null aside."""
    declared = prop.get("type", "string")
    types = [declared] if isinstance(declared, str) else list(declared)
    return next(
        (kind for kind in ("integer", "number", "boolean", "object", "array") if kind in types), "string"
    )


def _setting_from_text(text: str, kind: str) -> t.Any:
    """A setting's value from its variable's text; ValueError when it is not one of its kind."""
    value = text.strip()
    if kind == "integer":
        return int(value)
    if kind == "number":
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return int(number) if number.is_integer() and "." not in value else number
    if kind == "boolean":
        return _BOOLEANS[value.lower()] if value.lower() in _BOOLEANS else _not_a(value)
    if kind in {"object", "array"}:
        parsed = json.loads(value)
        if not isinstance(parsed, dict if kind == "object" else list):
            raise ValueError(kind)
        return parsed
    return text


def _not_a(value: str) -> t.NoReturn:
    raise ValueError(value)


def _is_number(value: object) -> bool:
    """A JSON number: the SDK reads `1.5` in a config file as a Decimal."""
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def api_url_error(api_url: object) -> str | None:
    """Credentials travel in headers: refuse plain http except to this machine."""
    url = urlsplit(api_url) if isinstance(api_url, str) else None
    if url is None or url.scheme not in {"https", "http"} or not url.hostname:
        return f"api_url must be an https URL (got {api_url!r})"
    if url.scheme == "http" and not _is_loopback(url.hostname):
        return (
            f"api_url must use https: {url.hostname} is not a loopback host, and plain http "
            "would send the credentials unencrypted"
        )
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    TapVobiz.cli()
