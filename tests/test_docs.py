"""The documentation site (`docs/`) builds in strict mode: a broken link, a heading anchor that
does not exist or a page outside the table of contents fails the suite, as `make docs` would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.doc_commands import bash_block
from tests.tap_runner import emulator_config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _build(source: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "sphinx-build"), "-W", "--keep-going", "-n", "-q", "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_docs_build_without_a_warning(tmp_path):
    built = _build(ROOT / "docs", tmp_path / "html")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "html" / "settings.html").exists()


def test_a_broken_link_fails_the_docs_build(tmp_path):
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(docs)], check=True)
    subprocess.run(["cp", str(ROOT / "CHANGELOG.md"), str(tmp_path)], check=True)
    page = docs / "lists.md"
    page.write_text(page.read_text() + "\nSee [the settings](settings.md#no-such-setting).\n")
    built = _build(docs, tmp_path / "html")
    assert built.returncode != 0
    assert "no-such-setting" in built.stderr


def test_every_page_linked_from_the_readme_exists():
    readme = (ROOT / "README.md").read_text()
    linked = re.findall(r"\]\((docs/[\w./-]+?)(?:#[\w-]+)?\)", readme)
    assert linked
    assert [path for path in linked if not (ROOT / path).exists()] == []


def test_the_tap_alone_as_docs_meltano_md_says_a_first_run_then_a_rerun_from_its_state(
    tmp_path, start_emulator
):
    """docs/meltano.md, "Without Meltano": discover, a first run, its last STATE as state.json, a rerun."""
    emulator = start_emulator(10, 300)
    (tmp_path / "config.json").write_text(json.dumps(emulator_config(emulator)))
    lines = bash_block("docs/meltano.md", "Without Meltano")
    assert len(lines) == 4
    script = "\n".join(["set -euo pipefail", *lines]).replace(".venv/bin/", f"{BIN}/")
    typed = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert typed.returncode == 0, typed.stderr[-3000:]
    first = _records(tmp_path / "run1.jsonl")
    rerun = _records(tmp_path / "run2.jsonl")
    assert sum(stream == "messages" for stream in first) == 300
    # The rerun started from the first run's bookmarks: it re-read only the lookback window.
    assert 0 < sum(stream == "messages" for stream in rerun) < 300
    assert "bookmarks" in json.loads((tmp_path / "state.json").read_text())


def _records(path: Path) -> list[str]:
    return [json.loads(line)["stream"] for line in path.read_text().splitlines() if '"type":"RECORD"' in line]


def test_the_long_checks_command_in_docs_development_md_selects_the_tests_marked_long():
    """docs/development.md, "The long checks": the command as typed (collecting only) finds exactly
    the tests the page describes."""
    [typed] = bash_block("docs/development.md", "The long checks")
    assert typed == ".venv/bin/pytest -m long"
    command = [
        str(BIN / "pytest"),
        *typed.split()[1:],
        "-p",
        "no:cacheprovider",
        "-n0",
        "--collect-only",
        "-q",
    ]

    collected = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    assert collected.returncode == 0, collected.stdout[-3000:]
    assert sorted(line for line in collected.stdout.splitlines() if "::" in line) == [
        "tests/test_concurrency.py::test_a_sustained_server_limit_is_met_without_429s_after_30_seconds",
        "tests/test_meltano.py::test_a_meltano_run_stopped_part_way_then_run_again_loads_postgres_exactly"
        "[pipeline-terminated]",
        "tests/test_models_odd_data.py::test_a_key_test_with_invariants_fails_on_a_repeated_key_and_on_a_broken_invariant"
        "[postgres]",
        "tests/test_models_odd_data.py::test_a_stream_left_unselected_builds_the_marts_without_it[postgres]",
        "tests/test_models_odd_data.py::test_rows_the_tap_re_read_long_after_their_day_reach_the_incremental_marts"
        "[postgres]",
    ]
