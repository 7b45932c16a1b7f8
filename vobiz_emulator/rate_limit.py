"""The account's rate limit, as a rate-limited API enforces one: a token bucket that can move.

Vobiz publishes no numbers, and a limit shared by every client of an account moves as they come
and go; `POST /_emulator/rate-limit` sets one, now or on a schedule, while a run goes on:

    {"per_second": 20, "burst": 1.0, "retry_after": "1", "body": false,
     "schedule": [[25, 60], [50, 30]]}

- `per_second`: tokens added a second; a request takes one, and finds none: 429.
- `burst`: the bucket holds `burst` seconds of tokens (full when set).
- `retry_after`: the `Retry-After` header of the 429 (null: none).
- `body`: the errors page's body, `details` stating the limit (`limitType` `cps`, `limit`,
  `current`, `retryAfter`), instead of `{"error": "rate limit exceeded"}`.
- `schedule`: `[seconds after this call, per_second]` steps.

`GET /_emulator/rate-limit` tells when each request was served or refused (seconds after the
limit was set) and the steps, so a benchmark can work out the share of the limit a client used.
`{}` (or `per_second` 0 with no schedule) removes the limit.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """One limit for all API requests; every method is called with the server's lock held."""

    per_second: float = 0.0
    burst: float = 1.0
    retry_after: str | None = "1"
    body: bool = False
    schedule: list[tuple[float, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    served: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.schedule = sorted((float(at), float(rate)) for at, rate in self.schedule)
        self.tokens = self.per_second * self.burst
        self.refilled = self.started

    @property
    def active(self) -> bool:
        return self.per_second > 0 or bool(self.schedule)

    def limit_at(self, now: float) -> float:
        """Requests a second allowed at `now` (the last step of the schedule reached)."""
        rate = self.per_second
        for at, step in self.schedule:
            if now - self.started >= at:
                rate = step
        return rate

    def take(self, now: float) -> bool:
        """Whether a request arriving at `now` is served (a token taken) or refused."""
        rate = self.limit_at(now)
        self.tokens = min(rate * self.burst, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if rate > 0 and self.tokens < 1:
            self.refused.append(now - self.started)
            return False
        self.tokens -= 1
        self.served.append(now - self.started)
        return True

    def refusal(self, now: float) -> tuple[dict[str, t.Any], dict[str, str]]:
        """The 429's body and headers."""
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
        if not self.body:
            return {"error": "rate limit exceeded"}, headers
        limit = self.limit_at(now)
        recent = sum(1 for moment in self.served[-int(limit * 2) - 1 :] if moment >= now - self.started - 1)
        details = {
            "limitType": "cps",
            "limit": int(limit) if limit == int(limit) else limit,
            "current": recent + 1,
            "retryAfter": float(self.retry_after or 1),
        }
        body = {
            "status": "error",
            "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Too many requests", "details": details},
        }
        return body, headers

    def report(self) -> dict[str, t.Any]:
        """What `GET /_emulator/rate-limit` answers."""
        return {
            "per_second": self.per_second,
            "schedule": self.schedule,
            "served": self.served,
            "refused": self.refused,
        }
