"""The webhook signature (`tap_vobiz.webhook_signature`): the docs' rule, its test vector, what fails it."""

from __future__ import annotations

import pytest

from tap_vobiz.webhook_signature import sign, verify

# docs/webhooks.md (from Vobiz's rule; Vobiz publishes no vector): secret, body, signature.
SECRET = "your-shared-secret"  # noqa: S105 - the documented example
BODY = (
    b'{"event_id":"f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f","event_type":"message.inbound",'
    b'"account_id":"MA_XXXXXXXX","occurred_at":"2026-03-25T10:00:00Z","payload":{}}'
)
SIGNATURE = "6c82a2dbcf397903ffaea500dffa3b4875fe6388361c8ea1c590354868bc48b1"


def test_the_documented_vector_signs_and_verifies() -> None:
    assert sign(SECRET, BODY) == SIGNATURE
    assert verify(SECRET, BODY, SIGNATURE)


def test_either_case_of_the_hex_digest_verifies() -> None:
    assert verify(SECRET, BODY, SIGNATURE.upper())
    assert verify(SECRET, BODY, SIGNATURE[:10].upper() + SIGNATURE[10:])


@pytest.mark.parametrize(
    ("secret", "body", "signature"),
    [
        pytest.param("another-secret", BODY, SIGNATURE, id="wrong secret"),
        pytest.param(SECRET, BODY.replace(b"inbound", b"inbounD"), SIGNATURE, id="one byte changed"),
        pytest.param(SECRET, BODY + b"\n", SIGNATURE, id="one byte added"),
        pytest.param(SECRET, BODY, SIGNATURE[:-1] + "0", id="digest changed"),
        pytest.param(SECRET, BODY, "sha256=" + SIGNATURE, id="prefixed digest"),
        pytest.param(SECRET, BODY, SIGNATURE[:32], id="half a digest"),
        pytest.param(SECRET, BODY, "", id="empty header"),
        pytest.param(SECRET, BODY, None, id="no header"),
        pytest.param(SECRET, BODY, "é" * 64, id="not hex"),
    ],
)
def test_a_delivery_that_does_not_match_fails(secret: str, body: bytes, signature: str | None) -> None:
    assert not verify(secret, body, signature)


def test_any_of_several_secrets_verifies_during_a_rotation() -> None:
    assert verify(("new-secret", SECRET), BODY, SIGNATURE)
    assert not verify(("new-secret", "older-secret"), BODY, SIGNATURE)
