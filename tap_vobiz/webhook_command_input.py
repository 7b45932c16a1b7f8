"""What the `vobiz-webhooks` commands are given that they cannot use, and the receiver's secrets.

Shared by the receiver's command (`webhooks_cli`) and the subscription commands
(`webhook_subscriptions`, which `webhooks_cli` loads only when one of them runs): both read a
secret the same way and fail the same way, one line and exit status 2. Nothing here imports the
SDK, so `vobiz-webhooks serve` starts without it.
"""

from __future__ import annotations

import os
import typing as t

if t.TYPE_CHECKING:
    from pathlib import Path

SECRET_VARIABLE = "VOBIZ_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret


class UsageError(Exception):
    """A problem with what the command was given: one line, exit status 2."""


def receiver_secrets(secret_file: Path | None) -> tuple[str, ...]:
    """The receiver's secrets: the file's non-empty lines, else `VOBIZ_WEBHOOK_SECRET`."""
    if secret_file is not None:
        try:
            text = secret_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read --secret-file {secret_file}: {type(error).__name__}") from None
        where = f"--secret-file {secret_file}"
    else:
        text = os.environ.get(SECRET_VARIABLE, "")
        where = SECRET_VARIABLE
    secrets = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not secrets:
        raise UsageError(
            f"no webhook secret: set {SECRET_VARIABLE} or pass --secret-file (got an empty {where})"
        )
    return secrets
