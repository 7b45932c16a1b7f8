"""The dbt project (transform/) run by the tests on a warehouse they fill themselves.

`DBT` is the venv the model tests build with (dbt-duckdb, dbt-postgres, and dbt-snowflake to parse);
`RawTables` writes the tap's nine tables as a loader would (every column of the stream's schema,
typed, plus the loader's `_sdc_*` columns) into DuckDB or PostgreSQL, with the rows a test chooses,
so a test can give the models data the API allows but the emulator does not make.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import typing as t
from pathlib import Path

from harness import pipeline_stack as stack
from scripts import loaders_check
from tap_vobiz.tap import STREAM_TYPES

TRANSFORM = stack.ROOT / "transform"
# dbt-core below 1.12 (1.12 cannot be installed from PyPI alone: see meltano.yml); duckdb below 1.3
# as target-duckdb 0.8.0 needs it, so both read the same file.
DBT = loaders_check.Loader(
    (
        "dbt-core>=1.10,<1.12",
        "dbt-duckdb>=1.9,<1.11",
        "duckdb<1.3",
        "dbt-snowflake>=1.9,<1.12",
        "dbt-postgres>=1.9,<1.12",
    ),
    "dbt",
    lambda out: {},
    lambda venv, out: {},
)
SCHEMAS = {stream.name: stream.schema["properties"] for stream in STREAM_TYPES}
# Runs SQL on a DuckDB file with the dbt venv's duckdb; prints the last statement's rows as JSON.
DUCKDB_SQL = """
import json, sys, duckdb
connection = duckdb.connect(sys.argv[1])
cursor = None
for statement in json.load(sys.stdin):
    cursor = connection.execute(statement)
columns = [d[0] for d in cursor.description] if cursor is not None and cursor.description else []
print(json.dumps([dict(zip(columns, row)) for row in (cursor.fetchall() if columns else [])], default=str))
"""


def install() -> Path:
    return loaders_check.install("dbt-duckdb", DBT)


def run_dbt(
    venv: Path, profile: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`dbt ARGS` on the project with the named profile (its exit code is the caller's to judge)."""
    return subprocess.run(
        [str(venv / "bin" / "dbt"), *args, "--project-dir", str(TRANSFORM),
         "--profiles-dir", str(TRANSFORM / "profiles" / profile), "--target-path", str(venv / "target")],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600, check=False,
    )  # fmt: skip


def _column_type(spec: dict, adapter: str, zoned: bool) -> str:
    types = set(spec.get("type", []))
    if spec.get("format") == "date-time":
        return "timestamptz" if zoned else "timestamp"
    if "integer" in types:
        return "bigint"
    if "boolean" in types:
        return "boolean"
    if types & {"object", "array"}:
        return "jsonb" if adapter == "postgres" else "json"
    return "text"


def _literal(value: object, column_type: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    text = str(value)
    if column_type.startswith("timestamp"):
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        text = moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        text += "+00" if column_type == "timestamptz" else ""
    return "'" + text.replace("'", "''") + "'"


class RawTables:
    """The loader's schema `vobiz` in a DuckDB file or a PostgreSQL database, and dbt run on it."""

    LOADER_COLUMNS: t.ClassVar[dict[str, str]] = {
        "_sdc_extracted_at": "timestamp",
        "_sdc_batched_at": "timestamp",
        "_sdc_deleted_at": "timestamp",
        "_sdc_sequence": "bigint",
    }

    def __init__(
        self, adapter: str, venv: Path, where: Path | stack.Postgres, *, zoned: bool = False
    ) -> None:
        self.adapter, self.venv, self.where, self.zoned = adapter, venv, where, zoned
        self.types: dict[str, dict[str, str]] = {}

    def sql(self, *statements: str) -> list[dict]:
        """Run the statements; the rows of the last one."""
        if self.adapter == "duckdb":
            printed = subprocess.run(
                [str(self.venv / "bin" / "python"), "-c", DUCKDB_SQL, str(self.where)],
                input=json.dumps(statements), capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            return json.loads(printed)
        import psycopg

        assert isinstance(self.where, stack.Postgres)
        with psycopg.connect(host=self.where.socket_dir, user="postgres", dbname=self.where.dbname) as c:
            cursor = None
            for statement in statements:
                cursor = c.execute(statement)  # type: ignore[arg-type]
            if cursor is None or cursor.description is None:
                return []
            columns = [d.name for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def create(
        self, tables: dict[str, list[dict]], loaded_at: str = "2026-02-01T00:00:00Z", *, keyed: bool = False
    ) -> None:
        """The tables (those not named are not created: a deselected stream), with these rows; `keyed`:
        with `id` as primary key, as target-postgres makes them (it upserts on the stream's key)."""
        statements = ["create schema if not exists vobiz"]
        for table in tables:
            types = {
                name: _column_type(spec, self.adapter, self.zoned) for name, spec in SCHEMAS[table].items()
            }
            self.types[table] = {**types, **self.LOADER_COLUMNS}
            columns = ", ".join(f"{name} {kind}" for name, kind in self.types[table].items())
            columns += ", primary key (id)" if keyed else ""
            statements.append(f"create table vobiz.{table} ({columns})")
        self.sql(*statements, "select 1 as done")
        for table, rows in tables.items():
            self.insert(table, rows, loaded_at)

    def insert(self, table: str, rows: list[dict], loaded_at: str) -> None:
        """Rows as an appending loader writes them: stamped with the batch's load time."""
        if not rows:
            return
        statements = []
        for sequence, row in enumerate(rows):
            stamped = {**row, "_sdc_extracted_at": loaded_at, "_sdc_batched_at": loaded_at}
            stamped["_sdc_sequence"] = sequence
            names = ", ".join(stamped)
            values = ", ".join(_literal(v, self.types[table][k]) for k, v in stamped.items())
            statements.append(f"insert into vobiz.{table} ({names}) values ({values})")  # noqa: S608 - literals quoted by _literal
        self.sql(*statements, "select 1 as done")

    def dbt(
        self, *args: str, timezone: str = "UTC", dbt_vars: dict | None = None
    ) -> subprocess.CompletedProcess:
        """`dbt ARGS` on these tables, the session in `timezone`, with `--vars`."""
        if self.adapter == "duckdb":
            env = {"DBT_DUCKDB_PATH": str(self.where), "TZ": timezone}
        else:
            assert isinstance(self.where, stack.Postgres)
            env = {
                "DBT_POSTGRES_HOST": self.where.socket_dir,
                "DBT_POSTGRES_USER": "postgres",
                "DBT_POSTGRES_DBNAME": self.where.dbname,
                "PGTZ": timezone,
            }
        extra = ("--vars", json.dumps(dbt_vars)) if dbt_vars else ()
        return run_dbt(self.venv, self.adapter, *args, *extra, env=env)

    def mart(self, name: str) -> list[dict]:
        """The rows of a model dbt built (schema vobiz_analytics)."""
        return self.sql(f"select * from vobiz_analytics.{name}")  # noqa: S608 - the tests' own names
