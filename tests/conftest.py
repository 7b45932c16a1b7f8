"""Fixtures: emulators serving generated Vobiz accounts on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import RunningEmulator


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """Start an emulator: `start_emulator(conversations, messages, seed=..., days=..., account={...},
    **server_options)`; `account` holds the Dataset's options for the other lists (contacts, ...)."""
    running: list[RunningEmulator] = []

    def start(
        conversations: int = 20,
        messages: int = 600,
        *,
        seed: int = 7,
        days: float = 30,
        account: dict | None = None,
        **options: object,
    ) -> RunningEmulator:
        dataset = Dataset(conversations, messages, seed=seed, days=days, **(account or {}))
        emulator = RunningEmulator(dataset, **options)
        running.append(emulator.__enter__())
        return emulator

    yield start
    for emulator in running:
        emulator.__exit__(None, None, None)
