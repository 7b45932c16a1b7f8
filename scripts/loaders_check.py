"""Load tap-vobiz's output into the loaders users pick from Meltano Hub, and check every row arrived.

    python scripts/loaders_check.py                  # every loader below; prints a line each
    python scripts/loaders_check.py target-duckdb    # one of them

The bundled emulator serves an account (60 conversations, 3,000 messages, ... every
stream), `tap-vobiz` reads it once, and its Singer output is piped into each loader,
installed from PyPI into its own venv under `.meltano/loaders/` (with uv, from the dev
tools). Then what the loader wrote (files, or tables read back with the loader's own
duckdb) is compared with what the emulator serves: every id of every table exactly once.
target-postgres is checked through Meltano by tests/test_meltano.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import typing as t
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import pipeline_stack as stack

BIN = Path(sys.executable).parent
VENVS = stack.ROOT / ".meltano" / "loaders"
ACCOUNT = {"conversations": 60, "messages": 3000, "days": 30, "contacts": 150}
# Reads a DuckDB file back (run by the loader's own Python, which has duckdb): table -> ids.
READ_DUCKDB = """
import json, sys, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
tables = connection.execute(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'vobiz'"
).fetchall()
print(json.dumps({name: [row[0] for row in connection.execute(f'SELECT id FROM vobiz.{name}').fetchall()]
                  for (name,) in tables}))
"""


# Not tap-vobiz's output: the smallest stream that shows whether a loader keeps the first record
# of every stream (two text columns, three records).
GENERIC_STREAM = "".join(
    json.dumps(message) + "\n"
    for message in [
        {
            "type": "SCHEMA",
            "stream": "things",
            "schema": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
            },
            "key_properties": ["id"],
        },
        *(
            {"type": "RECORD", "stream": "things", "record": {"id": f"t{i}", "name": f"thing {i}"}}
            for i in (1, 2, 3)
        ),
    ]
)


@dataclass(frozen=True)
class Loader:
    """A loader as users install it (`pip`), its config for an output folder, how to read what it wrote."""

    pip: tuple[str, ...]
    executable: str
    config: t.Callable[[Path], dict]
    read: t.Callable[[Path, Path], dict[str, list[str]]]  # (venv, output folder) -> table -> ids


def _read_jsonl(venv: Path, out: Path) -> dict[str, list[str]]:
    return {
        path.stem: [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]
        for path in out.glob("*.jsonl")
    }


def _read_csv(venv: Path, out: Path) -> dict[str, list[str]]:
    tables = {}
    for path in out.glob("*.csv"):
        with path.open(newline="") as file:
            tables[path.stem] = [row["id"] for row in csv.DictReader(file)]
    return tables


def _read_duckdb(venv: Path, out: Path) -> dict[str, list[str]]:
    command = [str(venv / "bin" / "python"), "-c", READ_DUCKDB, str(out / "warehouse.duckdb")]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _duckdb_config(out: Path) -> dict:
    return {"path": str(out / "warehouse.duckdb"), "default_target_schema": "vobiz"}


LOADERS = {
    "target-jsonl": Loader(
        ("target-jsonl==0.1.4",),
        "target-jsonl",
        lambda out: {"destination_path": str(out), "do_timestamp_file": False},
        _read_jsonl,
    ),
    "target-csv": Loader(
        ("meltanolabs-target-csv==0.5.0",), "target-csv", lambda out: {"output_path": str(out)}, _read_csv
    ),
    # With duckdb < 1.3, whose CSV sniffer does not take the first data row for a header:
    # target-duckdb 0.8.0 copies header-less CSV files without saying so (docs: Troubleshooting).
    "target-duckdb": Loader(
        ("target-duckdb==0.8.0", "duckdb<1.3"), "target-duckdb", _duckdb_config, _read_duckdb
    ),
    "target-duckdb, latest duckdb": Loader(
        ("target-duckdb==0.8.0",), "target-duckdb", _duckdb_config, _read_duckdb
    ),
}


def install(name: str, loader: Loader) -> Path:
    """The loader's venv, made (or remade when `pip` changed) with uv; one process at a time makes it."""
    venv = VENVS / name.replace(", ", "-").replace(" ", "-")
    VENVS.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{venv}.lock"):
        return _install(venv, loader)


def _install(venv: Path, loader: Loader) -> Path:
    marker = venv / "installed.json"
    if not marker.exists() or json.loads(marker.read_text()) != list(loader.pip):
        subprocess.run(
            [str(BIN / "uv"), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True
        )
        subprocess.run(
            [
                str(BIN / "uv"),
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                *loader.pip,
            ],
            check=True,
        )
        marker.write_text(json.dumps(list(loader.pip)))
    return venv


def versions(venv: Path, loader: Loader) -> str:
    """`target-x 1.2.3` (and `duckdb 1.2.2`) as installed."""
    listed = subprocess.run(
        [str(BIN / "uv"), "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {package["name"]: package["version"] for package in json.loads(listed)}
    wanted = dict.fromkeys([*(spec.split("=")[0].split("<")[0] for spec in loader.pip), "duckdb"])
    return " + ".join(f"{name} {installed[name]}" for name in wanted if name in installed)


def load(name: str, singer_output: str, workdir: Path) -> tuple[str, dict[str, list[str]], str]:
    """Pipe Singer output into the loader: (its versions, table -> ids it wrote, its log)."""
    loader = LOADERS[name]
    venv = install(name, loader)
    out = workdir / name.replace(", ", "-").replace(" ", "-")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = out / "config.json"
    config.write_text(json.dumps(loader.config(out)))
    completed = subprocess.run(
        [str(venv / "bin" / loader.executable), "--config", str(config)],
        input=singer_output,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{name} failed: {completed.stderr[-2000:]}")
    return versions(venv, loader), loader.read(venv, out), completed.stderr


def differences(loaded: dict[str, list[str]], served: dict, first_ids: dict[str, str]) -> list[str]:
    """How the loaded ids differ from the emulator's (empty: every id of every table exactly once).

    `first_ids`: the first record's id of each stream in the tap's output, named when it is the one missing.
    """
    problems = []
    for table, want in stack.served_tables(served).items():
        ids = Counter(loaded.get(table, []))
        if missing := want.keys() - ids.keys():
            which = " (the stream's first record)" if missing == {first_ids.get(table)} else ""
            problems.append(f"{len(missing)} of {len(want)} {table} missing{which}")
        if duplicated := [i for i, n in ids.items() if n > 1]:
            problems.append(f"{len(duplicated)} {table} twice")
        if extra := ids.keys() - want.keys():
            problems.append(f"{len(extra)} {table} that Vobiz does not list")
    return problems


def first_record_ids(singer_output: str) -> dict[str, str]:
    """Each stream's first record id in the tap's output (what a loader that drops one would drop)."""
    first_ids: dict[str, str] = {}
    for line in singer_output.splitlines():
        if '"type":"RECORD"' in line:
            message = json.loads(line)
            first_ids.setdefault(message["stream"], message["record"]["id"])
    return first_ids


def tap_output(api_url: str, workdir: Path) -> Path:
    """The tap's Singer output for the emulator's account (every stream), written to a file."""
    config = workdir / "tap-config.json"
    config.write_text(
        json.dumps({"auth_id": "MA_EMULATOR", "auth_token": "emulator-token", "api_url": api_url})
    )
    output = workdir / "tap-vobiz.singer"
    with output.open("w") as stdout:
        subprocess.run(
            [str(BIN / "tap-vobiz"), "--config", str(config)],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("loaders", nargs="*", help=f"default: all of {', '.join(LOADERS)}")
    parser.add_argument("--workdir", type=Path, default=stack.ROOT / "output" / "loaders")
    args = parser.parse_args()
    if unknown := set(args.loaders) - LOADERS.keys():
        parser.error(f"unknown loaders: {', '.join(sorted(unknown))}")
    names, workdir = args.loaders or list(LOADERS), args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    exact = True
    with stack.emulator(**ACCOUNT) as api:
        output = tap_output(api.api_url, workdir)
        served = api.get("/_emulator/export")
        records = sum('"type":"RECORD"' in line for line in output.open())
        first_ids = first_record_ids(output.read_text())
        print(f"tap-vobiz output: {records:,} records of {len(first_ids)} streams ({output})")
        for name in names:
            installed, loaded, _log = load(name, output.read_text(), workdir)
            problems = differences(loaded, served, first_ids)
            exact &= not problems or name.endswith("latest duckdb")
            verdict = "every row exactly once" if not problems else "; ".join(problems)
            print(f"{name} ({installed}): {sum(map(len, loaded.values())):,} rows: {verdict}")
            if problems:
                _, generic, _ = load(name, GENERIC_STREAM, workdir / "generic")
                print(
                    f"  {name}, a generic stream (not tap-vobiz's): {generic.get('things', [])} of t1, t2, t3"
                )
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
