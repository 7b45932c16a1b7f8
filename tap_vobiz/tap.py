"""The Vobiz tap: its settings and its streams."""

from __future__ import annotations

import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_vobiz.pagination import parse_timestamp
from tap_vobiz.streams import ConversationsStream, MessagesStream

DEFAULT_API_URL = "https://api.vobiz.ai/api/v1/messaging"


class TapVobiz(Tap):
    """Extracts WhatsApp conversations and messages from Vobiz."""

    name = "tap-vobiz"

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
            description="Base URL of the Vobiz messaging API.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start Date",
            description="On a first run (no state), extract only messages created at or after "
            "this time, and conversations whose window ends at or after it. RFC 3339, "
            "e.g. `2026-01-01T00:00:00Z`. Unset: the whole history.",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=100,
            title="Page Size",
            description="Messages requested per page (`limit`), 1 to 100.",
        ),
        th.Property(
            "request_timeout",
            th.IntegerType,
            default=60,
            title="Request Timeout",
            description="Seconds to wait for one HTTP response before retrying it.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            title="User Agent",
            description="User-Agent header sent with every request.",
        ),
    ).to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Add the rules a JSON schema states poorly: credentials, ranges, dates."""
        errors = super()._validate_config(raise_errors=False)
        errors += config_errors(self.config)
        if errors and raise_errors:
            raise ConfigValidationError("Invalid tap-vobiz config: " + "; ".join(errors), errors=errors)
        return errors

    def discover_streams(self) -> list[ConversationsStream | MessagesStream]:
        return [ConversationsStream(self), MessagesStream(self)]


def config_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with a config, one short sentence each, without echoing secrets."""
    errors = []
    has_pair = bool(config.get("auth_id")) and bool(config.get("auth_token"))
    if not has_pair and not config.get("bearer_token"):
        errors.append("set auth_id and auth_token, or bearer_token")
    page_size = config.get("page_size", 100)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 100:
        errors.append(f"page_size must be an integer from 1 to 100 (got {page_size!r})")
    timeout = config.get("request_timeout", 60)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        errors.append(f"request_timeout must be a positive number of seconds (got {timeout!r})")
    start_date = config.get("start_date")
    if start_date is not None and parse_timestamp(start_date) is None:
        errors.append(f"start_date is not an RFC 3339 date-time (got {start_date!r})")
    api_url = config.get("api_url", DEFAULT_API_URL)
    if not isinstance(api_url, str) or not api_url.startswith(("https://", "http://")):
        errors.append(f"api_url must be an http(s) URL (got {api_url!r})")
    return errors


if __name__ == "__main__":
    TapVobiz.cli()
