"""The warehouse models (transform/) beyond PostgreSQL: built by dbt-duckdb on what target-duckdb
loaded, they give the figures the emulator's data gives; the Snowflake adapter parses them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from harness import marts
from scripts import loaders_check
from tests import dbt_warehouse
from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import RunningEmulator

READ_MARTS = """
import decimal, json, sys, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
marts = {}
for name in sys.argv[2:]:
    cursor = connection.execute(f"SELECT * FROM vobiz_analytics.{name}")
    columns = [d[0] for d in cursor.description]
    marts[name] = [dict(zip(columns, row)) for row in cursor.fetchall()]
print(json.dumps(marts, default=lambda v: float(v) if isinstance(v, decimal.Decimal) else str(v)))
"""


READ_COLUMNS = """
import json, sys, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
rows = connection.execute(
    "SELECT table_schema, table_name, column_name FROM information_schema.columns "
    "WHERE table_schema IN ('vobiz', 'vobiz_analytics')"
).fetchall()
print(json.dumps(rows))
"""


def _dbt(venv: Path, profile: str, *args: str, env: dict[str, str] | None = None) -> str:
    completed = dbt_warehouse.run_dbt(venv, profile, *args, env=env)
    assert completed.returncode == 0, completed.stdout[-4000:]
    return completed.stdout


def _value(text: object) -> object:
    """A value as the DuckDB reader printed it: timestamps back to datetimes, days to dates."""
    if isinstance(text, str) and len(text) == 19 and text[4] == "-" and text[10] == " ":
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
    if isinstance(text, str) and len(text) == 10 and text[4] == "-" and text[7] == "-":
        return dt.date.fromisoformat(text)
    return text


@pytest.fixture(scope="module")
def dbt_venv() -> Path:
    return dbt_warehouse.install()


def test_the_models_built_on_duckdb_give_the_figures_of_the_emulators_data(dbt_venv, tmp_path):
    dataset = Dataset(60, 3000, days=30, contacts=150)
    with RunningEmulator(dataset) as emulator:
        output = loaders_check.tap_output(emulator.api_url, tmp_path).read_text()
    served = dataset.export()
    loaded = loaders_check.load("target-duckdb", output, tmp_path)
    assert loaded[1]  # the loader wrote tables
    warehouse = tmp_path / "target-duckdb" / "warehouse.duckdb"

    built = _dbt(dbt_venv, "duckdb", "build", env={"DBT_DUCKDB_PATH": str(warehouse)})

    assert "ERROR=0" in built and "WARN=0" in built, built[-3000:]
    printed = subprocess.run(
        [str(dbt_venv / "bin" / "python"), "-c", READ_MARTS, str(warehouse), *marts.KEYS],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    tables = {}
    for mart, rows in json.loads(printed).items():
        records = [{column: marts.loaded_value(_value(v)) for column, v in row.items()} for row in rows]
        tables[mart] = {tuple(r[k] for k in marts.KEYS[mart]): r for r in records}
    assert marts.mart_differences(tables, served) == []
    assert _undescribed_columns(dbt_venv, warehouse) == []


def _undescribed_columns(venv: Path, warehouse: Path) -> list[str]:
    """Columns built or loaded that the project's YAML does not describe (models, intermediate, sources)."""
    manifest = json.loads((venv / "target" / "manifest.json").read_text())
    described = {
        (node["name"] if node["resource_type"] != "source" else f"vobiz.{node['name']}"): {
            name for name, column in node["columns"].items() if column.get("description")
        }
        for node in [*manifest["nodes"].values(), *manifest["sources"].values()]
        if node["resource_type"] in {"model", "seed", "source"}
    }
    printed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", READ_COLUMNS, str(warehouse)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    problems = []
    for schema, table, column in json.loads(printed):
        name = f"vobiz.{table}" if schema == "vobiz" else table
        if not column.startswith("_sdc_") and column not in described.get(name, set()):
            problems.append(f"{name}.{column}")
    return problems


def test_the_snowflake_adapter_parses_the_project(dbt_venv):
    names = ("ACCOUNT", "USER", "DATABASE", "WAREHOUSE")
    env = {f"DBT_SNOWFLAKE_{name}": "parse-only" for name in names}
    _dbt(dbt_venv, "snowflake", "parse", env=env)
