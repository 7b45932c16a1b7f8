"""tap-vobiz's output in the loaders users pick (scripts/loaders_check.py): every row, exactly once."""

from __future__ import annotations

import json

import pytest

from scripts import loaders_check
from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import RunningEmulator


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    """The tap's output for an emulated account (every stream), what the emulator serves, a folder."""
    workdir = tmp_path_factory.mktemp("loaders")
    dataset = Dataset(60, 3000, days=30, contacts=150)
    with RunningEmulator(dataset) as emulator:
        output = loaders_check.tap_output(emulator.api_url, workdir)
    return output.read_text(), dataset.export(), workdir


@pytest.mark.parametrize("loader", ["target-jsonl", "target-csv", "target-duckdb"])
def test_every_row_reaches_the_loader_exactly_once(account, loader):
    output, served, workdir = account
    first_ids = loaders_check.first_record_ids(output)

    _installed, loaded, _log = loaders_check.load(loader, output, workdir)

    assert len(first_ids) == 9
    assert loaders_check.differences(loaded, served, first_ids) == []


def test_target_jsonl_writes_every_record_as_the_tap_emitted_it(account):
    output, _served, workdir = account
    emitted: dict[str, list[dict]] = {}
    for line in output.splitlines():
        if '"type":"RECORD"' in line:
            message = json.loads(line)
            emitted.setdefault(message["stream"], []).append(message["record"])

    loaders_check.load("target-jsonl", output, workdir)

    written = {
        path.stem: [json.loads(line) for line in path.read_text().splitlines()]
        for path in (workdir / "target-jsonl").glob("*.jsonl")
    }
    assert written == emitted
