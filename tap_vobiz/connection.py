"""The HTTP connection to the API: the environment's settings, and what a failed connection means.

`requests` reads proxies (`HTTPS_PROXY`, `NO_PROXY`, ...) and the CA bundle
(`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`) from the environment on every request, which
costs more than parsing a page. `api_session` reads them once, exactly as
`requests` would for the API's URL, and then stops the session looking again.

A failed connection is usually worth retrying, but three failures are the configuration's,
and waiting mends none of them: a host that cannot be resolved, one that refuses
connections before the API ever answered (`unreachable_host`), and a TLS handshake that
can never succeed (`tls_failure`): a certificate that does not verify, which behind a
TLS-inspecting proxy means the company's CA is not in the bundle the tap verifies with, or
a protocol error, such as `https://` against a server that speaks plain http (OpenSSL's
"wrong version number"). A connection closed during the handshake (EOF, a reset) is not
one of these: a restarting server or proxy does that, and it is retried. A proxy that fails is named as
the proxy (`proxy_failure`), never blamed on `api_url`, and retried like any transient
fault: a company proxy may be restarting.

The credentials never leave `api_url`'s origin (scheme, host and port). `requests` follows
a redirect anywhere and strips only `Authorization` when the host changes, so
`X-Auth-Token` would go along, over plain http too: here a redirect elsewhere is refused
before anything is sent (`UnsafeRedirectError`), and a redirect loop is one line
(`RedirectLoopError`), both ending the stream that met them. Nor does what the API says
(an error's text, a header) reach the log with a credential in it: `redact`.
"""

from __future__ import annotations

import os
import socket
import ssl
import typing as t
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from singer_sdk.authenticators import BearerTokenAuthenticator, SimpleAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from typing_extensions import override

from tap_vobiz.errors import StreamError

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
REDACTED = "[redacted]"


class UnsafeRedirectError(StreamError):
    """The API redirected a request to another origin (host, port, or http from https)."""

    advice = "check api_url (the API redirected elsewhere)"


class RedirectLoopError(StreamError):
    """The API kept redirecting a request (`requests`' TooManyRedirects)."""

    advice = "check api_url (the API redirects in a loop); if it is right, rerun later"


def api_authenticator(config: t.Mapping[str, t.Any]) -> SimpleAuthenticator | BearerTokenAuthenticator:
    """The credentials' headers: `Authorization: Bearer` when `bearer_token` is set, else `X-Auth-ID`
    and `X-Auth-Token` (used by the streams and by `vobiz-webhooks`' subscription commands)."""
    if config.get("bearer_token"):
        return BearerTokenAuthenticator(token=config["bearer_token"])
    return SimpleAuthenticator(
        auth_headers={"X-Auth-ID": config["auth_id"], "X-Auth-Token": config["auth_token"]}
    )


def api_session(url: str, workers: int) -> ApiOriginSession:
    """The session of a stream's requests: a connection per worker to keep alive; proxies, `NO_PROXY`
    and the CA bundle read once; redirects followed only within `url`'s origin."""
    session = ApiOriginSession(origin(url))
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(10, workers))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    environment = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(environment["proxies"])
    session.verify = environment["verify"]
    session.trust_env = False
    return session


class ApiOriginSession(requests.Session):
    """A session whose requests, redirects included, stay on the API's origin."""

    def __init__(self, api_origin: tuple[str, str, int]) -> None:
        super().__init__()
        self.api_origin = api_origin

    @override
    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        """Refuse a redirect to another origin: called for each before it is sent (with the credentials)."""
        target = str(prepared_request.url)
        if origin(target) != self.api_origin:
            scheme, host, port = self.api_origin
            raise UnsafeRedirectError(
                f"{_request_line(response.request)} was redirected ({response.status_code}) to "
                f"{_origin_text(origin(target))}, away from api_url's {scheme}://{host}:{port}; "
                "not followed, so the credentials were not sent there"
            )
        super().rebuild_auth(prepared_request, response)

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.TooManyRedirects:
            raise RedirectLoopError(
                f"{_request_line(request)} was redirected {self.max_redirects} times without an answer "
                "(a redirect loop)"
            ) from None


def origin(url: str) -> tuple[str, str, int]:
    """A URL's (scheme, host, port), the port its scheme's default when none is given."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a number: no origin the API's could be
        port = -1
    return scheme, parts.hostname or "", port or {"http": 80, "https": 443}.get(scheme, -1)


def _origin_text(where: tuple[str, str, int]) -> str:
    scheme, host, port = where
    return f"{scheme}://{host}:{port}" if host else "a URL without a host"


def _request_line(request: requests.PreparedRequest | None) -> str:
    """`METHOD /path?query` of a request (never its headers), its credentials redacted."""
    url = urlsplit(str(getattr(request, "url", "") or ""))
    query = f"?{url.query}" if url.query else ""
    line = f"{getattr(request, 'method', None) or 'GET'} {url.path}{query}"
    return redact(line, credentials_sent(request))


def describe_request(response: requests.Response) -> str:
    """`METHOD /path?query` of the request behind a response (never its headers; after a
    redirect, the API chose the URL: the credentials sent are redacted from it)."""
    request = response.request
    url = urlsplit(str(request.url if request else response.url or ""))
    query = f"?{url.query}" if url.query else ""
    return redact(f"{request.method if request else 'GET'} {url.path}{query}", credentials_sent(request))


def credentials_sent(request: object) -> tuple[str, ...]:
    """The credentials a request carried: `X-Auth-Token`'s value and `Authorization`'s token."""
    headers = getattr(request, "headers", None) or {}
    token = headers.get("X-Auth-Token")
    authorization = str(headers.get("Authorization") or "")
    return tuple(str(value) for value in (token, authorization.partition(" ")[2] or authorization) if value)


def secret_values(config: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    """The values of the settings the config schema marks `secret` (`auth_token`, `bearer_token`)."""
    properties = schema.get("properties", {})
    return tuple(
        str(value) for name, prop in properties.items() if prop.get("secret") and (value := config.get(name))
    )


def redact(text: str, secrets: t.Iterable[str]) -> str:
    """`text`, words of the API's (an error's text, a header), with every secret in it `[redacted]`.

    An API may quote what it was sent ("invalid token tok-..."): whatever it says goes through
    here before a log line, or an error's message, holds it.
    """
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def describe_transient_error(error: object) -> str:
    """A one-line description of a transient fault, without request headers."""
    if isinstance(error, RetriableAPIError):
        return redact(str(error), credentials_sent(getattr(error.response, "request", None)))
    if isinstance(error, requests.exceptions.Timeout):
        return "the request timed out (request_timeout)"
    if isinstance(error, requests.exceptions.RequestException):
        return (
            f"connection failed ({proxy_failure(error) or unreachable_host(error) or type(error).__name__})"
        )
    return type(error).__name__


def proxy_failure(error: BaseException) -> str | None:
    """`the proxy host:port (HTTPS_PROXY) ...` when a request failed at its proxy, not at the API."""
    if not any(isinstance(cause, requests.exceptions.ProxyError) for cause in _causes(error)):
        return None
    url = _url_of(error)
    proxy = requests.utils.select_proxy(url.geturl(), requests.utils.get_environ_proxies(url.geturl()))
    where = urlsplit(proxy) if proxy else None
    # host:port only: a proxy URL may hold a user and password.
    named = f"proxy {where.hostname}:{where.port or 80}" if where and where.hostname else "proxy"
    variable = "HTTPS_PROXY" if url.scheme == "https" else "HTTP_PROXY"
    refused = any(isinstance(cause, ConnectionRefusedError) for cause in _causes(error))
    return (
        f"the {named} ({variable}) {'refused the connection' if refused else 'failed'}; check that it "
        "is up, or set NO_PROXY for hosts reached without it"
    )


def unreachable_host(error: BaseException) -> str | None:
    """`cannot resolve host X` or `connection refused by X:port` when that is why a request failed
    (None when the proxy failed: see `proxy_failure`)."""
    if proxy_failure(error) is not None:
        return None
    url = _url_of(error)
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "NameResolutionError":
            return f"cannot resolve host {url.hostname or '?'}"
        if isinstance(cause, ConnectionRefusedError):
            port = url.port or {"http": 80}.get(url.scheme, 443)
            return f"connection refused by {url.hostname or '?'}:{port}"
    return None


def tls_failure(error: BaseException) -> str | None:
    """What to do when a request failed in a TLS handshake that no retry can mend (None otherwise)."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "certificate verify failed"
            named = [f"{name}={os.environ[name]}" for name in CA_BUNDLE_VARIABLES if os.environ.get(name)]
            bundle = f"the CA bundle {named[0]}" if named else "the CA bundle of certifi"
            return (
                f"Cannot verify the TLS certificate of {_url_of(error).hostname or '?'} ({reason}) "
                f"with {bundle}. If your network inspects TLS (a company proxy), point "
                "REQUESTS_CA_BUNDLE at a PEM file holding your company's CA certificate"
            )
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _TLS_CONNECTION_LOST):
            url = _url_of(error)
            where = f"{url.hostname or '?'}:{url.port or 443}"
            reason = (cause.reason or str(cause)).replace("_", " ").lower()
            if cause.reason in _NOT_TLS:
                return (
                    f"TLS with {where} failed ({reason}): the server does not speak TLS there (a plain "
                    f"http server?); check api_url's scheme (https:// or http://) and port"
                )
            return (
                f"TLS with {where} failed ({reason}): the server and the tap share no TLS version or "
                "cipher, and retrying cannot change that; check api_url, or the proxy in between"
            )
    return None


# What OpenSSL's versions say when the bytes that came back are no TLS record (plain http, most often).
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
# The connection went away during or after the handshake: a server or proxy restarting, worth a retry.
_TLS_CONNECTION_LOST = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def _url_of(error: BaseException) -> t.Any:
    return urlsplit(str(getattr(getattr(error, "request", None), "url", "") or ""))


def _causes(error: BaseException) -> t.Iterator[BaseException]:
    """`error` and everything it wraps (urllib3 keeps the cause in `args` and `reason`)."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        cause = pending.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        pending += [cause.__cause__, cause.__context__, *cause.args, getattr(cause, "reason", None)]
