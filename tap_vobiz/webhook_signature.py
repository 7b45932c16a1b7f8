"""The signature of a Vobiz webhook delivery: `X-Webhook-Signature`, as Vobiz documents it.

`hex(HMAC-SHA256(key = the subscription's secret as given, msg = the exact raw request body))`:
the body alone, no timestamp, no `sha256=` prefix (docs/webhooks.md). The receiver verifies
with it and the emulator's sender signs with it, so that both sides hold one reading of the rule.
The docs do not say the hex digest's case: either is accepted.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Webhook-Signature"
EVENT_HEADER = "X-Webhook-Event"


def sign(secret: str, body: bytes) -> str:
    """The lowercase hex signature of `body` under `secret` (the secret's UTF-8 bytes are the key)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secrets: str | tuple[str, ...], body: bytes, signature: str | None) -> bool:
    """Whether `signature` (hex, either case) signs `body` under the secret, or one of `secrets`.

    Compared in constant time; several secrets let a receiver accept the old and the new one
    while a subscription's secret is rotated (Vobiz documents no rotation: it is done by
    subscribing anew).
    """
    if not signature:
        return False
    given = signature.strip().lower().encode("ascii", "replace")
    matches = [hmac.compare_digest(sign(secret, body).encode(), given) for secret in _as_tuple(secrets)]
    return any(matches)


def _as_tuple(secrets: str | tuple[str, ...]) -> tuple[str, ...]:
    return (secrets,) if isinstance(secrets, str) else secrets
