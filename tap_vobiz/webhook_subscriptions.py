"""`vobiz-webhooks subscribe`, `list` and `unsubscribe`: the account's webhook subscriptions.

They call `POST`, `GET` and `DELETE /webhooks` with the tap's own settings (a `--config` file and
`TAP_VOBIZ_*` variables: `auth_id`/`auth_token` or `bearer_token`, `api_url`), its headers
(`connection.api_authenticator`) and its session (credentials never leave `api_url`'s origin).
Vobiz never returns a subscription's secret: `subscribe` prints the one it sent, once.
"""

from __future__ import annotations

import argparse
import json
import secrets
import typing as t
from pathlib import Path
from urllib.parse import quote

import requests
from singer_sdk.exceptions import ConfigValidationError

from tap_vobiz.connection import (
    api_authenticator,
    api_session,
    redact,
    tls_failure,
    unreachable_host,
)
from tap_vobiz.settings import (
    CONFIG_SCHEMA,
    CREDENTIALS,
    DEFAULT_API_URL,
    api_url_error,
    environment_config,
    trimmed_credentials,
)
from tap_vobiz.webhook_command_input import UsageError, receiver_secrets

TIMEOUT_SECONDS = 60


def tap_config(config_file: Path | None) -> dict[str, t.Any]:
    """The tap's connection settings: the config file, then `TAP_VOBIZ_*` variables over it."""
    config: dict[str, t.Any] = {}
    if config_file is not None:
        try:
            loaded = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read --config {config_file}: {type(error).__name__}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--config {config_file} must hold a JSON object")
        config = trimmed_credentials(loaded)
    try:
        config.update(environment_config(CONFIG_SCHEMA, "TAP_VOBIZ_"))
    except ConfigValidationError as error:
        raise UsageError(str(error)) from None
    if not (config.get("auth_id") and config.get("auth_token")) and not config.get("bearer_token"):
        raise UsageError("set auth_id and auth_token, or bearer_token (--config or TAP_VOBIZ_* variables)")
    config.setdefault("api_url", DEFAULT_API_URL)
    if problem := api_url_error(config["api_url"]):
        raise UsageError(problem)
    return config


class Subscriptions:
    """The `/webhooks` endpoints of one account."""

    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self.url = str(config["api_url"]).rstrip("/") + "/webhooks"
        self.session = api_session(self.url, 1)
        self.session.auth = api_authenticator(config)
        self._secrets = tuple(str(config[name]) for name in CREDENTIALS if config.get(name))

    def request(self, method: str, path: str = "", body: dict | None = None) -> requests.Response:
        """One request; an answer other than 2xx, or no answer, is a `UsageError` of one line."""
        try:
            response = self.session.request(
                method,
                self.url + path,
                json=body,
                timeout=TIMEOUT_SECONDS,
                headers={"Accept": "application/json"},
            )
        except requests.exceptions.RequestException as error:
            reason = tls_failure(error) or unreachable_host(error) or type(error).__name__
            raise UsageError(f"{method} /webhooks{path} failed: {reason}") from None
        if not response.ok:
            text = redact(
                response.text[:300].strip(), (*self._secrets, str((body or {}).get("secret") or ""))
            )
            raise UsageError(
                f"{method} /webhooks{path} answered {response.status_code}: {text or response.reason}"
            )
        return response

    def answer(self, method: str, body: dict | None = None) -> dict:
        """A request's JSON object answer (else a `UsageError`)."""
        response = self.request(method, body=body)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise UsageError(f"{method} /webhooks answered {response.status_code} without a JSON object")
        return payload


def subscribe(args: argparse.Namespace) -> int:
    subscriptions = Subscriptions(tap_config(args.config))
    secret = receiver_secrets(args.secret_file)[0] if args.secret_file else secrets.token_urlsafe(32)
    created = subscriptions.answer("POST", body={"url": args.url, "secret": secret})
    print(f"subscribed {created.get('id')}: {created.get('url')} ({created.get('status')})")
    if not args.secret_file:
        print(f"secret (shown once; give it to the receiver as VOBIZ_WEBHOOK_SECRET): {secret}")
    return 0


def list_subscriptions(args: argparse.Namespace) -> int:
    subscriptions = Subscriptions(tap_config(args.config))
    items = subscriptions.answer("GET").get("items") or []
    for item in items:
        print(f"{item.get('id')}  {item.get('status')}  {item.get('url')}  created {item.get('created_at')}")
    if not items:
        print("no webhook subscriptions")
    return 0


def unsubscribe(args: argparse.Namespace) -> int:
    subscriptions = Subscriptions(tap_config(args.config))
    subscriptions.request("DELETE", "/" + quote(args.id, safe=""))
    print(f"unsubscribed {args.id}")
    return 0
