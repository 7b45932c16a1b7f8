"""The emulator's HTTP server: the Vobiz API's paths, envelopes, auth and cursors.

API paths live under `/api/v1/messaging` like the real base URL. Control paths live
under `/_emulator/` and are what tests and the demo use to look at the data, add
activity between runs and inject faults:

- `GET  /_emulator/export`    every conversation, message, channel, template, contact, ... as served
- `GET  /_emulator/stats`     requests served, by kind and by status; most requests at once
- `GET  /_emulator/requests`  every API request's path and query, in order
- `POST /_emulator/activity`  `{"hours", "new_conversations", "new_messages", "status_changes",
                               "new_campaigns", "receipts", "new_calls"}`
- `POST /_emulator/changes`   `{"collection": "contacts", "create", "update", "delete", "delete_ids",
                               "after_requests"}`: rows created, updated (stamped with the clock)
                               or deleted, now, or, with `after_requests` N, once N more requests
                               to that collection (or to `after_requests_to`, e.g. "templates")
                               have been served: a change while a run pages
- `POST /_emulator/faults`    `{"latency_ms", "error_rate", "rate_limit_rate", "retry_after",
                               "malformed_rate", "max_per_second", "seed", "script": ["500", ...],
                               "endpoints": {"call_logs": "403"}}` (every request of that kind)
- `POST /_emulator/announcements` `{"messages": {"Deprecation": "@1798761600", "Sunset": "<HTTP date>",
                               "Link": "<url>; rel=\"sunset\""}, ...}`: headers every response of
                               that kind of request carries from now on (how Vobiz announces a
                               breaking change); `{}` removes them
- `POST /_emulator/shape`     `{"conversations": "items" | "cursor" | "pages", "omit": ["has_more", "total"],
                               "total_offset": 1, "has_more_false_on_first_page": true,
                               "limit_after": {"kind": "contacts", "requests": 1, "limit": 50},
                               "date_header": false, "whole": ["canned_responses"],
                               "ignore_page": ["templates"]}`: the envelope shapes and clocks the docs
                               leave open (`ListShape`), served from now on
- `POST /_emulator/reset`     forget the stats and the faults
- `POST /_emulator/statuses`  `{"ids": [<outbound message ids>], "status": "read"}`: those messages
                               move to that status now, whatever their age (a receipt days late,
                               past a rerun's lookback), with their `message.status` webhooks
- `POST /_emulator/webhooks`  `{"duplicate_rate", "repeat_rate", "reorder", "timeout_seconds",
                               "max_attempts", "retry_seconds", "workers", "seed"}`: how webhooks
                               are delivered from now on (`vobiz_emulator.webhooks.DeliveryOptions`)
- `GET  /_emulator/webhooks`  subscriptions, every event built (its body) and every delivery attempt
- `POST /_emulator/webhooks/wait` `{"timeout"}`: until every delivery was made or given up

The subscription API (`POST`/`GET /webhooks`, `DELETE /webhooks/{id}`) takes the API's
credentials; with a subscription, `/_emulator/activity` also sends its events as signed
webhooks (`vobiz_emulator/webhooks.py`).

A script is consumed one entry per API request, before the random faults apply:
`500`/`502`/`503`/`504`, `429` (Retry-After 1 s), `429-date` (as an HTTP date),
`429-bare` (no header), `429-body` (no header; the documented error body with
`details.retryAfter` 3), `malformed` (200 with a non-JSON body), `truncated` (200, cut
short), `reset` (connection closed without a response), `slow:<seconds>`, `400`, `401`,
`403`, `404`, `loop` (a messages page whose `next_cursor` is always the same), `ok`
(served normally), `redirect-same` (a 307 to the same URL), `redirect-other` (a 307 to
the same path on `http://127.0.0.2`, same port), `redirect-loop` (a 307 to the same URL,
for every request until the faults change), `error-quotes-token:<status>` (that status,
401 by default, whose `error` quotes the token the request carried).

A change (`/_emulator/changes`) moves the clock a second on before and after it, as time
passes between a run's requests; with `"same_second": true` it happens within the current
second (rows stamped with the second a run's reading began in).

Every response's `Date` header tells the dataset's virtual clock, as a real server's
tells the clock its data is written with. The conversation list comes in no particular
time order (by id), since none is documented.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import email.utils
import json
import random
import re
import ssl
import sys
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from typing_extensions import override

from vobiz_emulator.account_data import check_collection
from vobiz_emulator.dataset import Dataset, message_key
from vobiz_emulator.page_lists import BadPageRequest, LiveList, Paging
from vobiz_emulator.webhooks import WebhookSender, subscription_error

API_PREFIX = "/api/v1/messaging"
DEFAULT_AUTH_ID = "MA_EMULATOR"
DEFAULT_AUTH_TOKEN = "emulator-token"  # noqa: S105 - a published test credential
DEFAULT_BEARER_TOKEN = "emulator-bearer-token"  # noqa: S105
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

MESSAGES_PATH = re.compile(rf"^{API_PREFIX}/conversations/([^/]+)/messages$")
TEMPLATES_PATH = re.compile(rf"^{API_PREFIX}/channels/([^/]+)/templates$")
CONTACT_PATH = re.compile(rf"^{API_PREFIX}/contacts/([^/]+)$")
CAMPAIGN_PATH = re.compile(rf"^{API_PREFIX}/campaigns/([^/]+)$")
RECIPIENTS_PATH = re.compile(rf"^{API_PREFIX}/campaigns/([^/]+)/recipients$")
WEBHOOKS_PATH = f"{API_PREFIX}/webhooks"
WEBHOOK_PATH = re.compile(rf"^{API_PREFIX}/webhooks/([^/]+)$")
# The kind of each API request, for stats and for changes timed by requests.
KINDS = (
    (re.compile(rf"^{API_PREFIX}/conversations$"), "conversations"),
    (MESSAGES_PATH, "messages"),
    (re.compile(rf"^{API_PREFIX}/channels/whatsapp$"), "channels"),
    (TEMPLATES_PATH, "templates"),
    (re.compile(rf"^{API_PREFIX}/contacts(/[^/]+)?$"), "contacts"),
    (re.compile(rf"^{API_PREFIX}/canned-responses$"), "canned_responses"),
    (RECIPIENTS_PATH, "campaign_recipients"),
    (re.compile(rf"^{API_PREFIX}/campaigns(/[^/]+)?$"), "campaigns"),
    (re.compile(rf"^{API_PREFIX}/calls/whatsapp/logs$"), "call_logs"),
)


def request_kind(path: str) -> str:
    return next((kind for pattern, kind in KINDS if pattern.match(path)), "unknown")


@dataclass
class PendingChange:
    """A change (`spec`) to apply once `after` more requests of `kind` have been served: before the
    next one is answered, or with `spec["after_served"]`, right after it was (before its answer is
    sent, and before a slower request of the same kind is answered: pages answered out of order)."""

    kind: str
    after: int
    spec: dict

    @property
    def after_served(self) -> bool:
        return bool(self.spec.get("after_served"))


def encode_cursor(key: tuple[str, str] | list[str] | int) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> object:
    padded = cursor + "=" * (-len(cursor) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))


@dataclass
class Faults:
    """What the server does wrong, and how often."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: str | None = "1"
    malformed_rate: float = 0.0
    # A server-side limit: more requests than this in the last second get a 429 (Retry-After 1).
    max_per_second: float = 0.0
    seed: int = 0
    script: list[str] = field(default_factory=list)
    # Every request of a kind answered with a fault, e.g. {"call_logs": "403"}: an endpoint that
    # refuses the token, is missing from the plan, or is broken for good.
    endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def next_fault(self, kind: str = "") -> str | None:
        if kind in self.endpoints:
            return self.endpoints[kind]
        if self.script:
            entry = self.script.pop(0)
            return None if entry == "ok" else entry
        roll = self.rng.random()
        if roll < self.error_rate:
            return self.rng.choice(["500", "502", "503", "504"])
        roll -= self.error_rate
        if roll < self.rate_limit_rate:
            return "429"
        roll -= self.rate_limit_rate
        if roll < self.malformed_rate:
            return self.rng.choice(["malformed", "truncated"])
        return None


@dataclass
class ListShape:
    """How lists are shaped where the docs leave it open; the default is what the docs show today.

    - `conversations`: `items` (one `{"items": [...]}`, as documented today), `cursor`
      (`next_cursor` pages of `conversations_page_size`), or `pages` (page-numbered, the
      changelog's `{items, total, page, limit, has_more}`, `conversations_page_size` a page, 50
      by default).
    - `omit`: envelope fields left out of every page-numbered list (e.g. `has_more`, `total`).
    - `total_offset`: added to every `total` (a count that is permanently off).
    - `has_more_false_on_first_page`: page 1 says `has_more: false` whatever `total` says.
    - `limit_after`: `{"kind", "requests", "limit"}`: once that many requests of that kind were
      served, the server pages it `limit` rows at a time (a page size that changes mid-list).
    - `date_header`: False serves no `Date` header.
    - `whole`: the kinds of list served whole whatever `page` and `limit` ask, in the envelope
      they always send (`page` 1, their usual `limit`, `has_more` false, `total`): canned
      responses by default, which the docs give the envelope but no paging parameters.
    - `ignore_page`: the kinds of list whose server answers page 1 whatever `page` asks.
    - `order`: `{kind: "newest_first" | "updated_first"}`: lists in another order than oldest
      first (by `created_at`): newest first, or most recently updated first (the older docs'
      "ordered by most recent message").
    - `envelope`: `meta` serves the older docs' `{"items", "meta": {"total", "page"}}`
      (no `limit`, no `has_more`).
    - `strings`: every number and boolean of a page-numbered envelope as a string (`"50"`, `"true"`).
    - `empty`: how an empty page comes: `list` (`[]`), `null` (`"items": null`), `missing` (no
      `items`), or `204` (No Content).
    - `encoding`: `latin-1` serves bodies in ISO-8859-1, not UTF-8 (a misconfigured gateway).
    - `values`: envelope values set on every page-numbered page, as a server may send what no
      documentation shows (`{"has_more": "yes"}`, `{"total": -1}`, `{"limit": 25}`).
    - `late_pages`: `{kind: {"page": 2, "seconds": 0.5}}`: that page is answered so much later than
      asked, after pages asked for at the same time (pages answered out of order).
    """

    conversations: str = "items"
    omit: tuple[str, ...] = ()
    total_offset: int = 0
    has_more_false_on_first_page: bool = False
    limit_after: dict | None = None
    date_header: bool = True
    whole: tuple[str, ...] = ("canned_responses",)
    ignore_page: tuple[str, ...] = ()
    order: dict[str, str] = field(default_factory=dict)
    envelope: str = "standard"
    strings: bool = False
    empty: str = "list"
    encoding: str = "utf-8"
    values: dict[str, t.Any] = field(default_factory=dict)
    late_pages: dict[str, dict] = field(default_factory=dict)

    def lateness(self, kind: str, query: dict[str, list[str]]) -> float:
        """How much later than asked this page of `kind` is answered (`late_pages`)."""
        rule = self.late_pages.get(kind)
        if rule and query.get("page", ["1"])[0] == str(rule.get("page")):
            return float(rule.get("seconds", 0.5))
        return 0.0

    def __post_init__(self) -> None:
        if self.conversations not in {"items", "cursor", "pages"}:
            raise ValueError("conversations must be items, cursor or pages")
        self.omit = tuple(self.omit)
        self.whole = tuple(self.whole)
        self.ignore_page = tuple(self.ignore_page)
        for name, value, allowed in (
            ("envelope", self.envelope, {"standard", "meta"}),
            ("empty", self.empty, {"list", "null", "missing", "204"}),
            ("encoding", self.encoding, {"utf-8", "latin-1"}),
            *(
                ("order", order, {"oldest_first", "newest_first", "updated_first"})
                for order in self.order.values()
            ),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(sorted(allowed))}")

    def paging(self, kind: str) -> Paging:
        """How a page-numbered list of `kind` is paged (`LiveList.page`'s `whole`, `ignore_page`, `order`)."""
        return {
            "whole": kind in self.whole,
            "ignore_page": kind in self.ignore_page,
            "order": self.order.get(kind, "oldest_first"),
        }

    def served_limit(self, kind: str, served: int) -> int | None:
        """The page size the server forces on this request of `kind`, if `limit_after` says so."""
        rule = self.limit_after
        if rule and rule.get("kind") == kind and served > int(rule.get("requests", 0)):
            return int(rule["limit"])
        return None

    def reshape(self, page: dict) -> dict:
        """A page-numbered envelope as this shape serves it."""
        if self.total_offset and "total" in page:
            page["total"] += self.total_offset
        if self.has_more_false_on_first_page and page.get("page") == 1:
            page["has_more"] = False
        for name in self.omit:
            page.pop(name, None)
        page.update(self.values)
        if self.envelope == "meta":
            meta = {name: page.pop(name) for name in ("total", "page") if name in page}
            page.pop("limit", None)
            page.pop("has_more", None)
            page["meta"] = meta
        if self.strings:
            for holder in (page, page.get("meta", {})):
                for name in ("total", "page", "limit", "has_more"):
                    if name in holder:
                        holder[name] = json.dumps(holder[name])  # 50 -> "50", True -> "true"
        if not page.get("items"):
            if self.empty == "null":
                page["items"] = None
            elif self.empty == "missing":
                del page["items"]
        return page

    def no_content(self, page: dict) -> bool:
        """Whether this page is served as `204 No Content`."""
        return self.empty == "204" and not page.get("items")


class EmulatorState:
    """The dataset, the faults and the counters, shared by the server's threads."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        auth_id: str = DEFAULT_AUTH_ID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        bearer_token: str = DEFAULT_BEARER_TOKEN,
        conversations_page_size: int | None = None,
        shape: ListShape | dict | None = None,
    ) -> None:
        self.dataset = dataset
        self.auth_id = auth_id
        self.auth_token = auth_token
        self.bearer_token = bearer_token
        self.conversations_page_size = conversations_page_size
        if isinstance(shape, dict):
            shape = ListShape(**shape)
        if shape is None:
            shape = ListShape(conversations="cursor" if conversations_page_size else "items")
        self.shape: ListShape = shape
        self.faults = Faults()
        self.stats: Counter[str] = Counter()
        self.requests: list[str] = []
        self.request_times: list[float] = []  # time.monotonic() of each entry of `requests`
        self.limited_times: list[float] = []  # when `faults.max_per_second` answered 429
        self.lock = threading.Lock()
        self.pending_changes: list[PendingChange] = []
        self.in_flight = 0
        self.applied_changes: list[dict] = []
        self.announcements: dict[str, dict[str, str]] = {}  # request kind -> headers
        self.webhooks = WebhookSender()
        self._listing: list[dict] = []
        self._listing_size = -1

    def conversation_listing(self) -> list[dict]:
        """The conversations in the list's order: by id, unrelated to time (call with the lock held)."""
        conversations = self.dataset.conversations
        if len(conversations) != self._listing_size:
            self._listing = sorted((c.record for c in conversations), key=lambda record: record["id"])
            self._listing_size = len(conversations)
        return self._listing

    def change(self, collection: str, spec: dict) -> dict:
        """Create, update or delete rows of a collection, a second later (call with the lock held).

        The clock moves a second first, as time passes between a run's requests: the rows
        are stamped, and the `Date` of every later response says, a later second; and a
        second after, as time passes before the next request. With `same_second` the change
        happens within the clock's current second, the case a one-second clock cannot tell.
        """
        same_second = bool(spec.get("same_second"))
        if not same_second:
            self.dataset.now += dt.timedelta(seconds=1)
        result = self.dataset.change(collection, spec)
        if not same_second:
            self.dataset.now += dt.timedelta(seconds=1)
        self.applied_changes.append({"collection": collection, **result})
        return result

    def count_request(self, kind: str, *, served: bool = False) -> None:
        """One more request of `kind` about to be answered (or, `served`, answered): apply the changes
        that were waiting for it (lock held)."""
        for pending in list(self.pending_changes):
            if pending.kind == kind and pending.after_served == served:
                pending.after -= 1
                if pending.after < 0:
                    self.pending_changes.remove(pending)
                    self.change(str(pending.spec["collection"]), pending.spec)

    def over_limit(self, now: float) -> bool:
        """Whether the last second saw more requests than `faults.max_per_second` (lock held)."""
        times = self.request_times
        first = bisect.bisect_left(times, now - 1.0)
        return len(times) - first > self.faults.max_per_second

    def messages_requested(self) -> Counter[str]:
        """How many message pages were requested, per conversation id."""
        with self.lock:
            return Counter(
                m.group(1) for path in self.requests if (m := MESSAGES_PATH.match(path.split("?")[0]))
            )

    def authorized(self, headers: object) -> bool:
        get = headers.get  # type: ignore[attr-defined]
        if get("Authorization") == f"Bearer {self.bearer_token}":
            return True
        return get("X-Auth-ID") == self.auth_id and get("X-Auth-Token") == self.auth_token


class BadRequest(Exception):
    """A 400: invalid parameters."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: EmulatorServer

    @override
    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logging; `/_emulator/stats` has the counts."""

    @override
    def send_response(self, code: int, message: str | None = None) -> None:
        """As the standard library's, with the `Date` header only when the shape serves one."""
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        if self.server.state.shape.date_header:
            self.send_header("Date", self.date_time_string())

    @override
    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: the dataset's virtual clock, the time its data is written in."""
        return email.utils.formatdate(self.server.state.dataset.now.timestamp(), usegmt=True)

    # Plumbing

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        if self.server.state.shape.encoding == "latin-1":
            # ISO-8859-1: what it has a byte for as that byte, everything else escaped.
            escaped = json.dumps(payload).encode()
            body = re.sub(rb"\\u00([89a-f][0-9a-f])", lambda m: bytes([int(m.group(1), 16)]), escaped)
        else:
            try:
                body = json.dumps(payload, ensure_ascii=False).encode()
            except UnicodeEncodeError:  # a lone surrogate, valid in JSON only as an escape
                body = json.dumps(payload).encode()
        self._send(status, body, headers)

    def _read_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b"{}"
        payload = json.loads(body or b"{}")
        if not isinstance(payload, dict):
            raise BadRequest("body must be a JSON object")
        return payload

    # Routing

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        if url.path == "/_emulator/export":
            with state.lock:
                self._json(200, state.dataset.export())
            return
        if url.path == "/_emulator/stats":
            with state.lock:
                self._json(200, dict(state.stats))
            return
        if url.path == "/_emulator/requests":
            with state.lock:
                self._json(200, list(state.requests))
            return
        if url.path == "/_emulator/webhooks":
            self._json(200, state.webhooks.report())
            return
        if url.path == WEBHOOKS_PATH:
            self._serve_subscriptions("GET", url.path, {})
            return
        self._serve_api(url.path, parse_qs(url.query, keep_blank_values=True))

    def do_POST(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path
        try:
            payload = self._read_json()
        except (ValueError, BadRequest) as error:
            self._json(400, {"error": str(error)})
            return
        if path == WEBHOOKS_PATH:
            self._serve_subscriptions("POST", path, payload)
            return
        if path == "/_emulator/webhooks/wait":
            done = state.webhooks.wait(float(payload.get("timeout", 30)))
            self._json(200, {"done": done, **state.webhooks.report()})
            return
        with state.lock:
            if path == "/_emulator/activity":
                counts = ("new_conversations", "new_messages", "status_changes", "new_campaigns", "receipts")
                before = state.dataset.now
                result = state.dataset.add_activity(
                    hours=float(payload.get("hours", 6)),
                    **{name: int(payload.get(name, 0)) for name in (*counts, "new_calls")},
                )
                if state.webhooks.subscriptions:
                    result["webhook_events"] = state.webhooks.activity(state.dataset, result, before)
                self._json(200, result)
            elif path == "/_emulator/statuses":
                try:
                    state.dataset.now += dt.timedelta(seconds=1)
                    changed = state.dataset.set_status(
                        list(payload.get("ids", [])), str(payload.get("status"))
                    )
                except ValueError as error:
                    self._json(400, {"error": str(error)})
                else:
                    sent = state.webhooks.statuses(state.dataset, changed, state.dataset.now)
                    state.dataset.now += dt.timedelta(seconds=1)
                    self._json(200, {"changed": [m["id"] for m in changed], "webhook_events": sent})
            elif path == "/_emulator/webhooks":
                try:
                    state.webhooks.configure(payload)
                except TypeError as error:
                    self._json(400, {"error": str(error)})
                else:
                    self._json(200, {"ok": True})
            elif path == "/_emulator/changes":
                collection = str(payload.get("collection", ""))
                try:
                    if "after_requests" in payload:
                        check_collection(collection)
                        kind = str(payload.get("after_requests_to", collection))
                        state.pending_changes.append(
                            PendingChange(kind, int(payload["after_requests"]), payload)
                        )
                        self._json(200, {"pending": True})
                    else:
                        self._json(200, state.change(collection, payload))
                except ValueError as error:
                    self._json(400, {"error": str(error)})
            elif path == "/_emulator/faults":
                state.faults = Faults(**payload)
                self._json(200, {"ok": True})
            elif path == "/_emulator/shape":
                try:
                    state.shape = ListShape(**payload)
                except (TypeError, ValueError) as error:
                    self._json(400, {"error": str(error)})
                else:
                    self._json(200, {"ok": True})
            elif path == "/_emulator/announcements":
                state.announcements = {str(kind): dict(headers) for kind, headers in payload.items()}
                self._json(200, {"ok": True})
            elif path == "/_emulator/reset":
                state.faults = Faults()
                state.stats.clear()
                state.requests.clear()
                state.request_times.clear()
                state.pending_changes.clear()
                self._json(200, {"ok": True})
            else:
                self._json(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if WEBHOOK_PATH.match(path):
            self._serve_subscriptions("DELETE", path, {})
        else:
            self._json(404, {"error": "not found"})

    def _serve_subscriptions(self, method: str, path: str, payload: dict) -> None:
        """`POST /webhooks` (201), `GET /webhooks` (200), `DELETE /webhooks/{id}` (204): the
        secret is never returned."""
        state = self.server.state
        if not state.authorized(self.headers):
            self._json(401, {"error": "missing or invalid credentials"})
            return
        if method == "GET":
            self._json(200, state.webhooks.listing())
        elif method == "POST":
            if error := subscription_error(payload):
                self._json(400, {"error": error})
                return
            with state.lock:
                now = state.dataset.now
            self._json(201, state.webhooks.subscribe(payload["url"], payload["secret"], now))
        elif (match := WEBHOOK_PATH.match(path)) and state.webhooks.unsubscribe(match.group(1)):
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(404, {"error": "webhook not found"})

    def _serve_api(self, path: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        with state.lock:
            state.in_flight += 1
            state.stats["max_in_flight"] = max(state.stats["max_in_flight"], state.in_flight)
        try:
            self._serve_api_request(path, query)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _serve_api_request(self, path: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        kind = request_kind(path)
        with state.lock:
            now = time.monotonic()
            state.requests.append(self.path)
            state.request_times.append(now)
            fault = state.faults.next_fault(kind)
            latency = state.faults.latency_ms
            if fault is None and state.faults.max_per_second and state.over_limit(now):
                fault = "429"
                state.limited_times.append(now)
        if latency:
            time.sleep(latency / 1000)
        with state.lock:
            state.stats[f"requests:{kind}"] += 1
            state.stats["requests"] += 1
            state.count_request(kind)
        if fault:
            with state.lock:
                state.stats[f"faults:{fault.split(':')[0]}"] += 1
            if fault != "loop" and self._inject(fault):
                return
        if not state.authorized(self.headers):
            self._count(401)
            self._json(401, {"error": "missing or invalid credentials"})
            return
        if (limit := state.shape.served_limit(kind, state.stats[f"requests:{kind}"])) is not None:
            query = {**query, "limit": [str(limit)]}
        if late := state.shape.lateness(kind, query):
            time.sleep(late)
        try:
            if path == f"{API_PREFIX}/conversations":
                status, payload = 200, self._conversations_page(query)
            elif match := MESSAGES_PATH.match(path):
                status, payload = self._messages_page(match.group(1), query)
                if fault == "loop" and status == 200:
                    payload.update(has_more=True, next_cursor=encode_cursor(["loop", "loop"]))
            else:
                status, payload = self._account_page(path, query, state.shape.paging(kind))
                if fault == "loop" and status == 200:
                    payload["page"] = 1  # a server that ignores `page`
        except (BadRequest, BadPageRequest) as error:
            status, payload = 400, {"error": str(error)}
        with state.lock:
            state.count_request(kind, served=True)
        if status == 200 and "page" in payload:
            if state.shape.no_content(payload):
                self._count(204)
                self.send_response(204)
                self.end_headers()
                return
            payload = state.shape.reshape(payload)
        self._count(status)
        self._json(status, payload, state.announcements.get(kind))

    def _count(self, status: int) -> None:
        with self.server.state.lock:
            self.server.state.stats[f"status:{status}"] += 1

    def _inject(self, fault: str) -> bool:
        """Answer with the fault; False when it only delays the real answer."""
        if fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
            return False
        if fault in {"400", "401", "403", "404", "500", "502", "503", "504"}:
            self._json(int(fault), {"error": f"injected {fault}"})
        elif fault in {"redirect-same", "redirect-other", "redirect-loop"}:
            if fault == "redirect-loop":  # again for every request after it, until the faults change
                with self.server.state.lock:
                    self.server.state.faults.script.insert(0, fault)
            port = self.server.server_address[1]
            where = f"http://127.0.0.2:{port}" if fault == "redirect-other" else self.server.base_url
            self._json(307, {"error": "moved"}, {"Location": where + self.path})
        elif fault.startswith("error-quotes-token"):
            sent = self.headers.get("X-Auth-Token") or self.headers.get("Authorization", "")
            self._json(int(fault.partition(":")[2] or 401), {"error": f"invalid token {sent}"})
        elif fault == "429-body":
            # The errors page's documented body: no header, the wait in `details.retryAfter`.
            body = {
                "status": "error",
                "error": {
                    "code": "RATE_LIMIT_EXCEEDED",
                    "message": "Too many requests",
                    "details": {"limitType": "cps", "limit": 10, "current": 15, "retryAfter": 3},
                },
            }
            self._json(429, body)
        elif fault.startswith("429"):
            headers = {}
            if fault == "429":
                headers["Retry-After"] = self.server.state.faults.retry_after or "1"
            elif fault == "429-date":
                headers["Retry-After"] = email.utils.formatdate(time.time() + 1, usegmt=True)
            self._json(429, {"error": "rate limit exceeded"}, headers)
        elif fault == "malformed":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>")
        elif fault == "truncated":
            self._send(200, b'{"items": [{"id": "0f1e2d3c-')
        elif fault == "reset":
            self.close_connection = True
            self.connection.close()
        else:
            return False
        return True

    # Endpoints

    def _conversations_page(self, query: dict[str, list[str]]) -> dict:
        state = self.server.state
        with state.lock:
            records = list(state.conversation_listing())
        size = state.conversations_page_size
        if state.shape.conversations == "pages":
            return LiveList(default_limit=size or 50, max_limit=size or MAX_LIMIT).page(
                query, rows=records, **state.shape.paging("conversations")
            )
        if state.shape.conversations == "items" or not size:
            return {"items": records}
        start = 0
        if cursor := query.get("cursor", [""])[0]:
            try:
                start = int(decode_cursor(cursor))  # type: ignore[call-overload]
            except (ValueError, TypeError, binascii.Error) as error:
                raise BadRequest("invalid cursor") from error
        end = start + size
        page: dict = {"items": records[start:end], "has_more": end < len(records)}
        page["next_cursor"] = encode_cursor(end) if end < len(records) else None
        return page

    def _account_page(self, path: str, query: dict[str, list[str]], paging: Paging) -> tuple[int, dict]:
        """Channels, a channel's templates, contacts, canned responses: page-numbered lists (`paging`:
        how the server pages them, `ListShape.paging`)."""
        state = self.server.state
        account = state.dataset.account
        with state.lock:
            if path == f"{API_PREFIX}/channels/whatsapp":
                # Documented with no paging: just the items.
                return 200, {"items": [dict(row) for row in account.channels]}
            if match := TEMPLATES_PATH.match(path):
                templates = account.templates.get(match.group(1))
                if templates is None:
                    return 404, {"error": "channel not found"}
                return 200, templates.page(query, _field_filter(query, "status"), **paging)
            if path == f"{API_PREFIX}/contacts":
                return 200, account.contacts.page(query, _contact_filter(query), **paging)
            if match := CONTACT_PATH.match(path):
                contact = next((row for row in account.contacts if row["id"] == match.group(1)), None)
                return (200, dict(contact)) if contact else (404, {"error": "contact not found"})
            if path == f"{API_PREFIX}/canned-responses":
                return 200, account.canned_responses.page(query, **paging)
            campaigns = state.dataset.campaign_data
            if path == f"{API_PREFIX}/campaigns":
                if (limit := query.get("limit", ["20"])[0]).isdigit() and int(limit) > 100:
                    raise BadRequest("limit must be at most 100")  # the one documented maximum
                return 200, campaigns.campaigns.page(query, _field_filter(query, "status"), **paging)
            if match := RECIPIENTS_PATH.match(path):
                recipients = campaigns.recipients.get(match.group(1))
                if recipients is None:
                    return 404, {"error": "campaign not found"}
                return 200, recipients.page(query, _field_filter(query, "status"), **paging)
            if match := CAMPAIGN_PATH.match(path):
                campaign = next((row for row in campaigns.campaigns if row["id"] == match.group(1)), None)
                return (200, dict(campaign)) if campaign else (404, {"error": "campaign not found"})
            if path == f"{API_PREFIX}/calls/whatsapp/logs":
                return 200, campaigns.call_logs.page(
                    query, _field_filter(query, "status", "direction"), **paging
                )
        return 404, {"error": "not found"}

    def _messages_page(self, conversation_id: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        state = self.server.state
        raw_limit = query.get("limit", [str(DEFAULT_LIMIT)])[0]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadRequest(f"limit must be an integer between 1 and {MAX_LIMIT}")
        limit = int(raw_limit)
        cursor = query.get("cursor", [""])[0]
        key: tuple[str, str] | None = None
        if cursor:
            try:
                decoded = decode_cursor(cursor)
                if not isinstance(decoded, list) or len(decoded) != 2:
                    raise TypeError("not a message cursor")
                key = (str(decoded[0]), str(decoded[1]))
            except (ValueError, TypeError, binascii.Error) as error:
                raise BadRequest("invalid cursor") from error
        with state.lock:
            conversation = state.dataset.by_id.get(conversation_id)
            if conversation is None:
                return 404, {"error": "conversation not found"}
            messages = conversation.messages
            end = len(messages) if key is None else bisect.bisect_left(messages, key, key=message_key)
            start = max(end - limit, 0)
            items = [dict(m) for m in messages[start:end]]
        # Pages go newest to oldest; the order inside a page is unspecified, so shuffle.
        random.Random(f"{conversation_id}:{cursor}").shuffle(items)
        page: dict = {"items": items, "has_more": start > 0}
        if start > 0:
            page["next_cursor"] = encode_cursor(message_key(messages[start]))
        else:
            # The three documented spellings of "no more pages".
            ending = int(conversation_id[-1], 16) % 3
            if ending == 0:
                page["next_cursor"] = None
            elif ending == 1:
                page["next_cursor"] = ""
        return 200, page


def _field_filter(query: dict[str, list[str]], *names: str) -> t.Callable[[dict], bool] | None:
    """The documented equality filters of a list (`status`, `direction`)."""
    wanted = {name: query[name][0] for name in names if query.get(name, [""])[0]}
    if not wanted:
        return None
    return lambda row: all(row.get(name) == value for name, value in wanted.items())


def _contact_filter(query: dict[str, list[str]]) -> t.Callable[[dict], bool] | None:
    """The documented `search` (name or phone) and `tag` filters of GET /contacts."""
    search = query.get("search", [""])[0].lower()
    tag = query.get("tag", [""])[0]
    if not search and not tag:
        return None
    return lambda row: (
        (not tag or tag in row["tags"])
        and (not search or search in row["name"].lower() or search in row["phone_number"])
    )


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: with more connections opening at once (8
    # workers) on a busy machine, the kernel drops a SYN and the client resends it after 1 s,
    # so a request sent before a 429 arrives a second late, as if sent during the pause.
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], state: EmulatorState, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.scheme = "https" if tls else "http"
        if tls:
            # Like the real API, over TLS; the handshake happens in the request's own thread.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    @override
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (after a timeout, say) is normal; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX


class RunningEmulator:
    """An emulator serving from a background thread: `with RunningEmulator(ds) as emu:`."""

    def __init__(
        self,
        dataset: Dataset,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        **options: object,
    ) -> None:
        """`options` are `EmulatorState`'s: credentials, `conversations_page_size`, `shape`."""
        state = EmulatorState(dataset, **options)  # type: ignore[arg-type]
        self.server = EmulatorServer((host, port), state, tls)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def __enter__(self) -> RunningEmulator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
