"""The API announcing that an endpoint will go away: `Deprecation` and `Sunset` response headers.

Vobiz ships additive changes without notice and announces breaking ones with these
headers on the affected endpoints. A tap that ignores them breaks on the sunset date with
no warning; here the first response of an endpoint that carries either logs one WARNING
for the run, naming the endpoint and the dates, so that an operator sees it in
`meltano run` output weeks before. The headers' forms: `Deprecation: @1798761600`
(RFC 9745), `true` or an HTTP date (its drafts); `Sunset: <HTTP date>` (RFC 8594); a
`Link` with `rel="deprecation"` or `rel="sunset"` points at the announcement.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import requests

from tap_vobiz.connection import credentials_sent, redact
from tap_vobiz.decoding import parse_http_date


class DeprecationNotices:
    """Warns once per endpoint per run when its responses announce a deprecation or a sunset."""

    def __init__(self) -> None:
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def observe(self, response: requests.Response, endpoint: str, logger: logging.Logger) -> None:
        headers = response.headers
        deprecation, sunset = headers.get("Deprecation"), headers.get("Sunset")
        if deprecation is None and sunset is None:
            return
        with self._lock:
            if endpoint in self._warned:
                return
            self._warned.add(endpoint)
        text = announcement(endpoint, deprecation, sunset, response.links)
        logger.warning("%s", redact(text, credentials_sent(response.request)))


def announcement(endpoint: str, deprecation: str | None, sunset: str | None, links: dict) -> str:
    """The warning's text: what is deprecated since when, when it goes away, where to read more."""
    parts = [f"The Vobiz API announces a breaking change of {endpoint}:"]
    if deprecation is not None:
        since = _date(deprecation)
        parts.append(f"deprecated since {since}" if since else "deprecated")
    if sunset is not None:
        on = _date(sunset) or repr(sunset)
        parts.append(("and " if deprecation is not None else "") + f"removed on {on}")
    urls = [links[rel]["url"] for rel in ("deprecation", "sunset") if rel in links and "url" in links[rel]]
    if urls:
        parts.append(f"(see {', '.join(dict.fromkeys(urls))})")
    return " ".join(parts) + "; upgrade tap-vobiz before then, or tell its maintainers"


def _date(value: str) -> str | None:
    """`@<unix seconds>` or an HTTP date as `YYYY-MM-DD HH:MM UTC`; None for `true` or what does not parse."""
    text = value.strip()
    if text.startswith("@"):
        try:
            moment: dt.datetime | None = dt.datetime.fromtimestamp(int(text[1:]), tz=dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            return None
    else:
        moment = parse_http_date(text)
    return None if moment is None else moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
