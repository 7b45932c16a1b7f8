"""Fixtures: emulators serving generated Vobiz accounts on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import RunningEmulator


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one test process more than there are cores. The suite waits more than it
    computes (Retry-After pauses, rate limits, the tap's start-up in a subprocess): on 2 cores,
    3 processes take 213 s, 2 take 319 s, 4 take 221 s."""
    return (os.cpu_count() or 1) + 1


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
