"""The tap's settings: their schema, with every default and range stated once; the checks a JSON
schema states poorly (credentials, dates, URLs, ranges in words a user reads); and settings from
`TAP_VOBIZ_*` environment variables, of every kind.

Everything else reads a setting from the validated config, where the schema's defaults are
filled in (the SDK's validator does that), so no module keeps a default of its own.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import ipaddress
import json
import math
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import ConfigValidationError

from tap_vobiz.decoding import format_timestamp, parse_setting_timestamp, parse_timestamp

DEFAULT_API_URL = "https://api.vobiz.ai/api/v1/messaging"
DEFAULT_LOOKBACK_HOURS = 72
DEFAULT_MAX_RETRY_SECONDS = 300
DEFAULT_METRICS_LOG_LEVEL = "WARNING"
DEFAULT_PAGE_SIZE = 100
DEFAULT_PROGRESS_INTERVAL = 30
# WhatsApp keeps trying to deliver a message for 30 days; read receipts come within that too, mostly.
DEFAULT_RECEIPT_WINDOW_DAYS = 30
DEFAULT_REQUEST_TIMEOUT = 60
DEFAULT_STATE_INTERVAL = 5


CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(
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
        "reach the warehouse. RFC 3339, e.g. `2026-01-01T00:00:00Z`; a date alone (`2026-01-01`) "
        "is read as midnight UTC, a time without an offset as UTC, and the run says so in one line. "
        "Unset: the whole history.",
    ),
    th.Property(
        "lookback_hours",
        th.NumberType(minimum=0, maximum=24 * 366),
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
        th.NumberType(minimum=0, maximum=3650),
        default=DEFAULT_RECEIPT_WINDOW_DAYS,
        title="Receipt Window Days",
        description="How long after a campaign finished (or last changed) its recipients are read "
        "again on every run, for late delivery and read receipts. The default, 30, is how long "
        "WhatsApp keeps trying to deliver a message. A finished campaign older than that costs no "
        "request, unless its counters changed since the last run (then it is read once).",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=100),
        default=DEFAULT_PAGE_SIZE,
        title="Page Size",
        description="Messages requested per page (`limit`).",
    ),
    th.Property(
        "max_workers",
        th.IntegerType(minimum=1, maximum=64),
        title="Max Workers",
        description="Cap on requests in flight at once (1: one after another): the messages of "
        "several conversations, the pages of a page-numbered list. Unset: adaptive, a slow start "
        "from 2 (doubled while answers come back without a 429), then 8 up to 32, as many as the "
        "allowed rate needs at the API's latency, back to 8 when latency rises (requests "
        "queueing). Output order and state are the same whatever the value.",
    ),
    th.Property(
        "max_requests_per_second",
        th.NumberType(exclusive_minimum=0),
        title="Max Requests Per Second",
        description="Cap on requests per second across all workers. Unset or not, a 429 "
        "pauses every worker (for `Retry-After`), and the rate is learned from the 429s: just under "
        "the rate that was refused (or the limit the 429 states), rising again to probe a limit "
        "that moves.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1),
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request Timeout",
        description="Seconds to wait for one HTTP response before retrying it.",
    ),
    th.Property(
        "max_retry_seconds",
        th.IntegerType(minimum=1),
        default=DEFAULT_MAX_RETRY_SECONDS,
        title="Max Retry Seconds",
        description="How long one request may be retried after transient faults (429, 5xx, "
        "timeouts, dropped connections, malformed bodies), with exponential backoff and "
        "jitter or the wait `Retry-After` asks for, before the run fails.",
    ),
    th.Property(
        "progress_interval_seconds",
        th.NumberType(minimum=0),
        default=DEFAULT_PROGRESS_INTERVAL,
        title="Progress Interval Seconds",
        description="How often a long sync logs its progress (conversations read of those "
        "to read, messages, requests, retries, records per second); the first line comes after 5 "
        "seconds when this is longer. 0 turns it off.",
    ),
    th.Property(
        "state_interval_seconds",
        th.IntegerType(minimum=0),
        default=DEFAULT_STATE_INTERVAL,
        title="State Interval Seconds",
        description="While conversations' messages or campaigns' recipients are read, how often "
        "a STATE is written that an interrupted run resumes from: at a conversation or campaign "
        "boundary, never ahead of the records written (docs/resume.md). 0: after "
        "every conversation or campaign.",
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
        "webhook_capture",
        th.StringType,
        title="Webhook Capture",
        description="Where the `vobiz-webhooks` receiver writes the webhooks it captured: a local "
        "directory, or an fsspec URL (`s3://bucket/prefix`). Set, the tap also offers the streams "
        "`webhook_events` (one row per delivery), `message_statuses` (one row per WhatsApp status "
        "of a message, with WhatsApp's own time) and `call_events`, each read on from its bookmark "
        "(a position per receiver process). Unset: those streams are not offered.",
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


# The settings sent as HTTP headers (`X-Auth-ID`, `X-Auth-Token`, `Authorization`).
CREDENTIALS = ("auth_id", "auth_token", "bearer_token")


def trimmed_credentials(config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The config with the whitespace around each credential removed.

    A secret read from a file, a Kubernetes secret or a `.env` line often ends in a
    newline, which `http.client` refuses in a header, quoting the value in the error and
    its traceback. No credential begins or ends in whitespace, so it is cut when the config
    is read (`--config` files, `TAP_VOBIZ_*` variables).
    """
    return {
        name: value.strip() if name in CREDENTIALS and isinstance(value, str) else value
        for name, value in config.items()
    }


def environment_config(schema: dict[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """Settings from `TAP_VOBIZ_*` variables (`--config ENV`, or Meltano's env), of every kind.

    The SDK converts integers, booleans and objects but leaves a number (`lookback_hours`,
    `max_requests_per_second`, ...) a string that validation then refuses, and a value
    that does not convert ends in a traceback. Here every kind converts, and a value
    that does not is one line naming the variable.
    """
    properties = schema["properties"]
    as_text = {"properties": {name: {"type": ["string", "null"]} for name in properties}}
    config, errors = {}, []
    for name, text in parse_environment_config(as_text, prefix).items():
        if not text.strip():
            continue  # `TAP_VOBIZ_START_DATE=` (a `.env` line left blank) reads as unset
        kind = _setting_kind(properties[name])
        try:
            config[name] = _setting_from_text(text, kind)
        except ValueError:
            variable = prefix + name.upper().replace("-", "_")
            shown = "" if kind in {"object", "array"} else f" (got {text!r})"
            errors.append(f"{variable} must be {_KIND_WORDS[kind]}{shown}")
    if errors:
        raise ConfigValidationError("Invalid tap-vobiz config: " + "; ".join(errors), errors=errors)
    return trimmed_credentials(config)


# How each ranged setting's error line says what it must be; the bounds are the schema's.
RANGE_WORDS = {
    "page_size": "an integer from {minimum} to {maximum}",
    "max_workers": "an integer from {minimum} to {maximum}",
    "request_timeout": "a positive number of seconds",
    "max_retry_seconds": "a positive number of seconds",
    "max_requests_per_second": "a positive number",
    "progress_interval_seconds": "a number of seconds, {minimum} or more",
    "state_interval_seconds": "a whole number of seconds, {minimum} or more",
    "lookback_hours": "a number of hours from {minimum} to {maximum}",
    "receipt_window_days": "a number of days from {minimum} to {maximum}",
}


def _range_words(name: str) -> str:
    """What a ranged setting must be, in words, with the schema's bounds."""
    prop = CONFIG_SCHEMA["properties"][name]
    return RANGE_WORDS[name].format(minimum=prop.get("minimum"), maximum=prop.get("maximum"))


# The descriptions (`--about`, docs/settings.md's table, Meltano's `tap-vobiz.yml`) say each range in
# the words of the error line, from the bounds above.
for _name in RANGE_WORDS:
    CONFIG_SCHEMA["properties"][_name]["description"] += f" Must be {_range_words(_name)}."


def config_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with a config, one short sentence each, without echoing secrets.

    Ranges are checked against the schema's `minimum`/`maximum` (stated once, there); the
    schema's defaults fill in what is unset.
    """
    errors = []
    has_pair = bool(config.get("auth_id")) and bool(config.get("auth_token"))
    if not has_pair and not config.get("bearer_token"):
        errors.append("set auth_id and auth_token, or bearer_token")
    properties = CONFIG_SCHEMA["properties"]
    for name in CREDENTIALS:
        if error := _header_error(name, config.get(name), secret=bool(properties[name].get("secret"))):
            errors.append(error)
    for name in RANGE_WORDS:
        value = config.get(name, properties[name].get("default"))
        if value is not None and not _in_range(value, properties[name]):
            errors.append(f"{name} must be {_range_words(name)} (got {value!r})")
    start_date = config.get("start_date")
    if start_date is not None and parse_setting_timestamp(start_date) is None:
        errors.append(f"start_date is not an RFC 3339 date-time (got {start_date!r})")
    if error := api_url_error(config.get("api_url", DEFAULT_API_URL)):
        errors.append(error)
    return errors


def unknown_settings(config: t.Mapping[str, t.Any], known: t.Collection[str]) -> list[str]:
    """A warning for each config key tap-vobiz has no setting of, naming the closest one it has.

    The schema allows other keys (the SDK's default), so `start_data` would otherwise be ignored
    without a word and the run read the whole history. `known` holds the SDK's built-in
    settings too (`stream_maps`, `flattening_enabled`, ...); keys that begin with `_` are a
    tool's own (Meltano's extras such as `_select`) or a comment, and are left alone.
    """
    warnings = []
    for name in sorted(set(config) - set(known)):
        if name.startswith("_"):
            continue
        closest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {closest[0]}?" if closest else "tap-vobiz --about lists the settings"
        warnings.append(f"Ignoring the setting {name}: tap-vobiz has no setting of that name; {hint}")
    return warnings


def start_date_reading(value: object) -> str | None:
    """How a `start_date` without a UTC offset (a date alone, a local-looking time) was read: as UTC.

    One rule, said once per run, rather than refusing what Meltano's `date_iso8601` settings
    often hold; None for RFC 3339 (and for what is no date at all: `config_errors` says so).
    """
    if not isinstance(value, str) or parse_timestamp(value) is not None:
        return None
    if (moment := parse_setting_timestamp(value)) is None or dt.datetime.fromisoformat(value.strip()).tzinfo:
        return None
    alone = len(value.strip()) == len("2026-01-01")
    what, reading = ("a date alone", "midnight UTC") if alone else ("a time without a UTC offset", "UTC")
    return f"start_date {value} is {what}: read as {format_timestamp(moment)} ({reading})"


def _header_error(name: str, value: object, *, secret: bool) -> str | None:
    """Why a credential cannot be sent in an HTTP header, without its value; None when it can.

    Whitespace around it is trimmed when the config is read; what is left inside (a line
    break, a control character, a curly quote pasted with it) would end the first request
    in `http.client`, whose error quotes the value. Every Vobiz credential is printable ASCII.
    """
    if not isinstance(value, str):
        return None
    if "\n" in value or "\r" in value:
        problem = "a line break"
    elif any(not " " <= char <= "~" for char in value):
        problem = "a control or non-ASCII character"
    else:
        return None
    why = ": it is a secret" if secret else ""
    return (
        f"{name} holds {problem}, which an HTTP header cannot carry: check how it was copied "
        f"(the value given is not shown{why})"
    )


def _in_range(value: object, prop: dict[str, t.Any]) -> bool:
    """Whether a setting's value is of its kind and within the schema's bounds."""
    integer = _setting_kind(prop) == "integer"
    if not (isinstance(value, int) and not isinstance(value, bool) if integer else _is_number(value)):
        return False
    number = t.cast("float", value)
    return (
        number >= prop.get("minimum", -math.inf)
        and number <= prop.get("maximum", math.inf)
        and number > prop.get("exclusiveMinimum", -math.inf)
    )


def range_errors_of_the_schema(error: str) -> bool:
    """A validator message about a bound `config_errors` states better (one line per problem)."""
    return any(
        words in error
        for words in (
            "is less than the minimum of",
            "is greater than the maximum of",
            "less than or equal to the minimum",
        )
    )


def without_secret(error: str, secrets: t.Iterable[str]) -> str:
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
