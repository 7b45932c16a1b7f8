"""The HTTP connection to the API: the environment's settings, and what a failed connection means.

`requests` reads proxies (`HTTPS_PROXY`, `NO_PROXY`, ...) and the CA bundle
(`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`) from the environment on every request, which
costs more than parsing a page. `configure_session` reads them once, exactly as
`requests` would for the API's URL, and then stops the session looking again.

A failed connection is usually worth retrying, but three failures are the configuration's,
and waiting mends none of them: a host that cannot be resolved, one that refuses
connections before the API ever answered (`unreachable_host`), and a TLS certificate that
does not verify (`untrusted_certificate`), which behind a TLS-inspecting proxy means the
company's CA is not in the bundle the tap verifies with. A proxy that fails is named as
the proxy (`proxy_failure`), never blamed on `api_url`, and retried like any transient
fault: a company proxy may be restarting.
"""

from __future__ import annotations

import os
import socket
import ssl
import typing as t
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from singer_sdk.exceptions import RetriableAPIError

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def configure_session(session: requests.Session, url: str, workers: int) -> None:
    """A connection per worker to keep alive; proxies, `NO_PROXY` and the CA bundle read once."""
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(10, workers))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    environment = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(environment["proxies"])
    session.verify = environment["verify"]
    session.trust_env = False


def describe_transient_error(error: object) -> str:
    """A one-line description of a transient fault, without request headers."""
    if isinstance(error, RetriableAPIError):
        return str(error)
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


def untrusted_certificate(error: BaseException) -> str | None:
    """What to do when a request failed because the server's TLS certificate did not verify."""
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
    return None


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
