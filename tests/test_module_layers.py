"""The tap's modules are layers that point one way, and each imports alone.

The layers, lowest first (a module may import modules of its own layer or lower ones, never a
higher one, not even under TYPE_CHECKING or inside a function; and no module imports itself back
through others):

1. foundations: errors, parsing, pacing, the report, settings, files, the webhook area
2. the run: what one run's streams share (`run.py`)
3. the base stream that knows the API (`client.py`)
4. bookmarks (`incremental.py`) and the lists read under a parent's rows (`fan_out.py`)
5. the list reader (`page_lists.py`) and resuming a fan-out (`resume.py`)
6. the streams, one module per API area
7. the Tap class, then the entry point

The import graph is read from the source (`ast`), not from this docstring.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tap_vobiz"

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "__init__",
        "api_clock",
        "capture_reader",
        "concurrency",
        "connection",
        "decoding",
        "deprecations",
        "errors",
        "input_files",
        "malformed_fields",
        "output",
        "pacing",
        "pagination",
        "record_messages",
        "run_report",
        "schema_types",
        "settings",
        "webhook_capture",
        "webhook_command_input",
        "webhook_receiver",
        "webhook_signature",
        "webhook_subscriptions",
        "webhooks_cli",
    ),
    ("run",),
    ("client",),
    ("incremental", "fan_out"),
    ("page_lists", "resume"),
    ("account_streams", "call_streams", "campaign_streams", "capture_streams", "conversation_streams"),
    ("tap",),
    ("__main__",),
)
LAYER = {module: number for number, modules in enumerate(LAYERS) for module in modules}


def _modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def _imports(module: str) -> set[str]:
    """The tap_vobiz modules `module` imports anywhere in its source (top level, TYPE_CHECKING, functions)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(), filename=f"{module}.py")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from tap_vobiz import run_report` imports the module run_report.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if len(parts) == 2 and parts[0] == "tap_vobiz" and (PACKAGE / f"{parts[1]}.py").exists():
                found.add(parts[1])
    found.discard(module)
    return found


def test_every_module_has_a_layer():
    unplaced = [module for module in _modules() if module not in LAYER]
    assert not unplaced, f"modules in no layer: {unplaced}"
    assert not (gone := [module for module in LAYER if module not in _modules()]), f"no such modules: {gone}"


def test_no_module_imports_a_module_above_it():
    upward = sorted(
        f"{module} (layer {LAYER[module] + 1}) imports {imported} (layer {LAYER[imported] + 1})"
        for module in _modules()
        for imported in _imports(module)
        if LAYER.get(imported, 0) > LAYER.get(module, 0)
    )
    assert not upward, "\n".join(upward)


def test_the_base_stream_knows_nothing_built_on_it():
    built_on_it = {m for m in LAYER if LAYER[m] > LAYER["client"]}
    assert not (known := sorted(_imports("client") & built_on_it)), f"client.py imports {known}"


def test_the_import_graph_has_no_cycle():
    graph = {module: _imports(module) for module in _modules()}
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


# `__main__` runs the CLI when imported; `python -m tap_vobiz` is what imports it.
@pytest.mark.parametrize("module", [m for m in _modules() if m != "__main__"])
def test_each_module_imports_alone(module):
    imported = subprocess.run(
        [sys.executable, "-c", f"import tap_vobiz.{module}"], capture_output=True, text=True, check=False
    )
    assert imported.returncode == 0, imported.stderr
