"""Fixtures: emulators serving generated Vobiz accounts on loopback."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import pipeline_stack as stack
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[stack.Postgres]:
    """One embedded PostgreSQL for the test process; tests each get a database of it (`warehouse`).

    Its data directory is not under pytest's temporary folders: the server runs as another user
    (`embedded_postgres`, when the tests run as root), and every pytest session that starts on the
    machine takes the other users' access to `/tmp/pytest-of-<user>` away, so a server there stopped
    with "Permission denied" whenever another suite started beside this one."""
    base = Path(tempfile.mkdtemp(prefix="tap-vobiz-postgres-"))
    try:
        with stack.postgres(base / "data") as pg:
            yield pg
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def warehouse(postgres_server: stack.Postgres, request: pytest.FixtureRequest) -> stack.Postgres:
    """A new, empty database of the test process's PostgreSQL, named after the test."""
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return postgres_server.new_database(f"{name}_{uuid.uuid4().hex[:8]}")
