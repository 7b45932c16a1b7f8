"""The benchmarks' `--before TREE` runs that tree's tap, not this one's."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark(monkeypatch: pytest.MonkeyPatch) -> object:
    """benchmarks/run.py as a module (it imports its neighbours, as a script run from there does)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_another_trees_tap_is_the_one_run_from_the_projects_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from the project's folder (as the benchmark is), `python -m tap_vobiz` imported this
    tree's package whatever PYTHONPATH said: every `--before` figure was this tree's."""
    other = tmp_path / "other-tree"
    (other / "tap_vobiz").mkdir(parents=True)
    (other / "tap_vobiz" / "__init__.py").write_text("")
    (other / "tap_vobiz" / "__main__.py").write_text("print('the other tree', __file__)\n")
    command, env, cwd = load_benchmark(monkeypatch).tap_command(other)  # type: ignore[attr-defined]
    # The benchmark runs from the project's folder (`.venv/bin/python benchmarks/run.py`).
    done = subprocess.run(command, env=env, cwd=cwd or ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.startswith("the other tree"), done.stdout + done.stderr
    assert str(other / "tap_vobiz" / "__main__.py") in done.stdout
