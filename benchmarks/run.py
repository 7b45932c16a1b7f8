"""Throughput and memory of `tap-vobiz` against the emulator, in one run, as a markdown table.

    .venv/bin/python benchmarks/run.py                   # every scenario, about 30 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --only contacts   # one family of scenarios
    .venv/bin/python benchmarks/run.py --repeat 1        # one run of each, quicker and noisier
    .venv/bin/python benchmarks/run.py --only pacing --before ../main-tree   # rate limits, before/after
    .venv/bin/python benchmarks/run.py --only models --before ../main-tree   # dbt build, before/after
    .venv/bin/python benchmarks/run.py --only others       # beside dlt and Airbyte, at a fixed limit

For each family (`conversations`: the conversations and messages streams, cursor-paged;
`contacts`: the contacts stream, a page-numbered list), each figure the median of
`--repeat` runs taken in turn (machines here are shared and noisy, so compare figures of
one run, not across runs):

1. 25 ms of latency per request: wall time and records/s with `max_workers=1` and with
   the default (adaptive: 8 up to 32 in flight); the speed-up is the ratio of the two medians.
2. Zero latency: records/s of the tap (default settings, and `max_workers=1`) against
   `benchmarks/reference_client.py` (plain `requests` + `json`, no SDK, one request at a
   time) reading the same data from the same emulator.
3. Peak memory (max RSS of the tap process) of full syncs of three sizes: bounded memory
   means it does not grow with the account.

The `account` family is the whole account, all nine streams (`ACCOUNT` below) at 25 ms of
latency: a full sync with `max_workers=1` and with the default, and the requests it made;
then six hours of activity (`SIX_HOURS`, and the demo's changes to the account's lists)
and a rerun from the last STATE: its requests per stream and seconds; and peak memory of
full syncs of 10%, 50% and 100% of that account. The `backfill` family is that account's
first sync killed -9 at 90 % of its messages and resumed from its last STATE: requests and
seconds of the resumed run against an uninterrupted one (one run each). The `models` family
is that account loaded by `meltano run tap-vobiz target-postgres` into the embedded PostgreSQL
and `dbt build` of `transform/`: the first build, the incremental one after six hours of
activity and another load, and a full refresh of the same data, each checked against the
emulator's own figures; with `--before TREE` that tree's transform/ builds beside this one's,
alternately, on the same data (into its own schema). The `webhooks` family is the webhook
receiver (`vobiz-webhooks serve`) under signed deliveries: 1,000 a second offered for 10 s
(acknowledged rate, p50 and p99 of the acknowledgement latency), and as many as it answers
from 32 connections
(`benchmarks/webhook_load.py`); every acknowledged delivery must be in the capture. The
`capture` family is a webhook capture of 1,000,000 deliveries read by the tap (`webhook_events`,
`message_statuses`, both) and a rerun from its STATE with nothing new.

The `pacing` family is the account's rate limit, which the tap must learn (issue 29): the
emulator's token bucket (a second's requests, 429 with Retry-After 1) moving 20 -> 60 -> 30
requests a second, 25 s each, at 25 ms a request (the share of each phase's limit served after
its first 5 s, the share of requests refused, the seconds until 2 s served 90 % of the raised
limit); 40 a second at 300 ms a request (30 s); a fixed 30 a second (600 conversations: the
sync's time against requests / limit); and no limit at 25 ms and 0 ms. With `--before TREE`
(e.g. `git worktree add --detach ../main-tree main`) the tap of that tree runs beside this one,
alternately, with this venv's packages; in the limited scenarios this tree runs a third time with
its pacer off (8 requests in flight, each 429 retried on its own after its wait: the SDK's way).

The `others` family is the tools a user would pick instead, on the pacing family's fixed limit
(30 requests a second, 25 ms a request, 600 conversations): dlt's `rest_api` source
(`benchmarks/others/dlt_rest_api.py`, into DuckDB) and Airbyte's declarative CDK
(`benchmarks/others/airbyte_manifest.yaml`), each in a venv of its own under the user's cache folder
(`~/.cache/tap-vobiz-benchmarks`, made on first use from the pins beside them, a minute or two;
never the project's venv), with their own defaults for retries, and this tree's tap, alternately:
the moment of each one's last request against requests / limit, its whole run's time, its share of
requests answered 429, and the ids it read against the emulator's (every one, once).

The tap and the reference write to /dev/null; the emulator runs in its own process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import webhook_load  # noqa: E402 - benchmarks/webhook_load.py, beside this script

from harness import pipeline_stack  # noqa: E402
from harness.pipeline_stack import ACCOUNT_CHANGES, select_streams  # noqa: E402
from tap_vobiz.pacing import PACER_OFF_VARIABLE  # noqa: E402

BIN = Path(sys.executable).parent
AUTH = {"auth_id": "MA_EMULATOR", "auth_token": "emulator-token"}
# The first line of the tap's end-of-run block: "Sync completed: 16,759 records emitted from ...".
SUMMARY = re.compile(r"Sync completed: ([\d,]+) records emitted")


def records_emitted(log: str) -> int:
    """The records a run of the tap emitted, from its end-of-run block."""
    found = SUMMARY.search(log)
    if not found:
        raise SystemExit(f"no final count in the tap's log:\n{log[-2000:]}")
    return int(found.group(1).replace(",", ""))


FAMILIES = {
    "conversations": ("conversations", "messages"),
    "contacts": ("contacts",),
    "account": pipeline_stack.TABLES,
    "backfill": pipeline_stack.TABLES,
    "models": pipeline_stack.TABLES,
    "webhooks": (),
    "capture": ("webhook_events", "message_statuses"),
    "pacing": ("conversations", "messages"),
    "others": ("conversations", "messages"),
}


@dataclass
class Measure:
    seconds: float
    records: int
    max_rss_mb: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


class Emulator:
    """`python -m vobiz_emulator` in its own process, on a free port."""

    def __init__(
        self, conversations: int, messages: int, contacts: int | None = None, **account: int
    ) -> None:
        if contacts is not None:
            account["contacts"] = contacts
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vobiz_emulator", "--port", "0", "--conversations", str(conversations),
             "--messages", str(messages), "--days", "60",
             *(f"--{name.replace('_', '-')}={value}" for name, value in account.items())],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        banner = self.process.stdout.readline()  # type: ignore[union-attr]
        self.api_url = banner.rsplit("serving ", 1)[1].strip()
        self.base_url = self.api_url.split("/api/", 1)[0]

    def faults(self, **faults: object) -> None:
        self.post("/_emulator/faults", faults)

    def post(self, path: str, payload: dict) -> t.Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.base_url + path, data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
            return json.load(response)

    def get(self, path: str) -> t.Any:
        with urllib.request.urlopen(self.base_url + path, timeout=60) as response:  # noqa: S310
            return json.load(response)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.base_url + "/_emulator/stats", timeout=60) as response:  # noqa: S310
            return json.load(response)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure(
    command: list[str],
    count_from_stderr: t.Callable[[str], int],
    stdout: Path | None = None,
    *,
    env: dict[str, str] | None = None,
    stop_after: float | None = None,
    cwd: Path | None = None,
) -> Measure:
    """Run a command with stdout to /dev/null (or a file); its wall time, records and peak RSS. With
    `stop_after`, it is stopped (SIGTERM) after so many seconds, and counts no records."""
    with tempfile.TemporaryFile("w+") as stderr, open(stdout or os.devnull, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=stderr, env=env, cwd=cwd)
        if stop_after is not None:
            try:
                process.wait(stop_after)
            except subprocess.TimeoutExpired:
                process.terminate()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        log = stderr.read()
    if stop_after is not None:
        return Measure(seconds, 0, usage.ru_maxrss / 1024)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} exited {process.returncode}:\n{log[-2000:]}")
    return Measure(seconds, count_from_stderr(log), usage.ru_maxrss / 1024)


def tap_command(source: Path | None) -> tuple[list[str], dict[str, str] | None, Path | None]:
    """The command, environment and working directory that run this tree's tap, or (`source`)
    another tree's with this venv's packages.

    `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH: run from anywhere
    else, a tree of the tap there (this one, when the benchmark runs from the project's folder) is
    the one imported. So the other tree's tap runs from that tree."""
    if source is None:
        return [str(BIN / "tap-vobiz")], None, None
    source = source.resolve()
    return [sys.executable, "-m", "tap_vobiz"], {**os.environ, "PYTHONPATH": str(source)}, source


def family_catalog(workdir: Path, family: str) -> Path:
    """A catalog selecting the family's streams, discovered once a benchmark run."""
    catalog = workdir / f"catalog-{family}.json"
    if not catalog.exists():
        discovered = subprocess.run(
            [str(BIN / "tap-vobiz"), "--discover"], capture_output=True, text=True, check=True
        ).stdout
        catalog.write_text(json.dumps(select_streams(json.loads(discovered), FAMILIES[family])))
    return catalog


def tap(
    emulator: Emulator,
    workdir: Path,
    family: str,
    *,
    state: dict | None = None,
    source: Path | None = None,
    stop_after: float | None = None,
    pacer_off: bool = False,
    **settings: object,
) -> Measure:
    """A sync of the family's streams (selected by a catalog; the whole account: all), with these
    settings, from `state` if given; its Singer output is kept in workdir/output.jsonl. `source`: the
    tap's code from another tree (`--before`), run with this venv's packages. `pacer_off`: this tree
    with its pacer off (8 requests in flight, each 429 retried on its own after its wait)."""
    config = workdir / "config.json"
    config.write_text(json.dumps({**AUTH, "api_url": emulator.api_url, **settings}))
    catalog = family_catalog(workdir, family)
    command, env, cwd = tap_command(source)
    command += ["--config", str(config), "--catalog", str(catalog)]
    if pacer_off:
        env = {**os.environ, PACER_OFF_VARIABLE: "1"}
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(workdir / "state.json")]
    return measure(
        command, records_emitted, workdir / "output.jsonl", env=env, stop_after=stop_after, cwd=cwd
    )


def last_state(workdir: Path) -> dict:
    """The last STATE of the tap's last run."""
    state: dict = {}
    with (workdir / "output.jsonl").open() as output:
        for line in output:
            if line.startswith('{"type":"STATE"'):
                state = json.loads(line)["value"]
    return state


def reference(emulator: Emulator, family: str) -> Measure:
    script = ROOT / "benchmarks" / "reference_client.py"
    command = [sys.executable, str(script), family, emulator.api_url, AUTH["auth_id"], AUTH["auth_token"]]
    return measure(command, lambda log: int(log.strip().splitlines()[-1]))


def medians(runs: list[Measure]) -> Measure:
    return Measure(
        statistics.median(r.seconds for r in runs),
        runs[0].records,
        statistics.median(r.max_rss_mb for r in runs),
    )


def timed(scenario: str, client: str, run: Measure) -> tuple[str, str, str, str]:
    return (scenario, client, f"{run.seconds:.1f} s", f"{run.per_second:,.0f}")


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    memory = ""
    if Path("/proc/meminfo").exists():
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} CPUs ({model}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


# Per family: (conversations, messages, contacts) of the emulator for the latency,
# zero-latency and memory scenarios, and what the table calls them.
SCALES = {
    "conversations": {
        "latency": ((1000, 50_000, None), "1,000 conversations / 50,000 messages"),
        "zero": ((1000, 100_000, None), "1,000 conversations / 100,000 messages"),
        "memory": [((200, 20_000, None), "20,000 messages"), ((1000, 100_000, None), "100,000 messages"),
                   ((2000, 200_000, None), "200,000 messages")],
    },
    "contacts": {
        "latency": ((10, 100, 100_000), "100,000 contacts"),
        "zero": ((10, 100, 100_000), "100,000 contacts"),
        "memory": [((10, 100, 20_000), "20,000 contacts"), ((10, 100, 100_000), "100,000 contacts"),
                   ((10, 100, 200_000), "200,000 contacts")],
    },
}  # fmt: skip


# The whole account (issue 12): 20 channels, 200 templates, 50,000 contacts, 200 campaigns with
# 200,000 recipients, 20,000 call logs, 2,000 conversations / 100,000 messages; and six hours of it.
ACCOUNT = {
    "conversations": 2000,
    "messages": 100_000,
    "channels": 20,
    "templates_per_channel": 10,
    "contacts": 50_000,
    "campaigns": 200,
    "recipients": 200_000,
    "call_logs": 20_000,
}
SIX_HOURS = {
    "hours": 6,
    "new_conversations": 100,
    "new_messages": 3000,
    "status_changes": 1000,
    "new_campaigns": 5,
    "receipts": 5000,
    "new_calls": 300,
}


def scaled(factor: float) -> dict[str, int]:
    return {name: max(1, int(value * factor)) for name, value in ACCOUNT.items()}


def account_scenarios(repeat: int, workdir: Path) -> list[tuple[str, str, str, str]]:
    """The whole account at 25 ms: full sync, 1 worker vs the default; a rerun after six hours; memory."""
    rows = []
    with Emulator(**ACCOUNT) as emulator:  # type: ignore[arg-type]
        emulator.faults(latency_ms=25)
        one, eight, requests = [], [], []
        for _ in range(repeat):
            one.append(tap(emulator, workdir, "account", max_workers=1))
            before = emulator.stats().get("requests", 0)
            eight.append(tap(emulator, workdir, "account"))
            requests.append(emulator.stats().get("requests", 0) - before)
        state = last_state(workdir)
        one_m, eight_m = medians(one), medians(eight)
        name = "25 ms latency, whole account (see below)"
        rows += [
            timed(name, "tap, max_workers=1, full sync", one_m),
            timed("", f"tap, default settings, full sync, {statistics.median(requests):,.0f} requests",
                  eight_m),
            ("", "**speed-up, default vs 1 worker**", f"**{one_m.seconds / eight_m.seconds:.1f}x**", ""),
        ]  # fmt: skip
        print(f"account, 25 ms: 1 worker {one_m.seconds:.1f}s, default {eight_m.seconds:.1f}s", flush=True)
        emulator.post("/_emulator/activity", SIX_HOURS)
        for collection, spec in ACCOUNT_CHANGES.items():
            emulator.post("/_emulator/changes", {"collection": collection, **spec})
        emulator.post("/_emulator/reset", {})
        rerun = tap(emulator, workdir, "account", state=state)
        stats = emulator.stats()
        per_stream = ", ".join(
            f"{stream} {stats.get('requests:' + stream, 0):,}" for stream in pipeline_stack.TABLES
        )
        rows.append(
            timed(
                "", f"+6 h, rerun from the STATE: {stats.get('requests', 0):,} requests ({per_stream})", rerun
            )
        )
        print(f"account, rerun: {rerun.seconds:.1f}s, {stats.get('requests', 0)} requests", flush=True)

    rows.append(("peak memory (max RSS), full sync of the whole account, default settings", "tap", "", ""))
    for factor in (0.1, 0.5, 1.0):
        with Emulator(**scaled(factor)) as emulator:  # type: ignore[arg-type]
            run = tap(emulator, workdir, "account")
        rows.append(("", f"{factor:.0%} of the account ({run.records:,} records)", f"{run.max_rss_mb:.0f} MB",
                     f"{run.per_second:,.0f}"))  # fmt: skip
        print(f"account, memory: {factor:.0%}, {run.max_rss_mb:.0f} MB", flush=True)
    return rows


def killed_at(emulator: Emulator, workdir: Path, stream: str, records: int) -> dict:
    """A first sync of the whole account killed -9 once `records` RECORDs of `stream` are out; the
    last STATE it wrote."""
    config = workdir / "config.json"
    # A STATE every second: the default 5 s would be a quarter of this 20-second sync (in a backfill
    # of hours it is nothing).
    config.write_text(json.dumps({**AUTH, "api_url": emulator.api_url, "state_interval_seconds": 1}))
    command = [
        str(BIN / "tap-vobiz"),
        "--config",
        str(config),
        "--catalog",
        str(workdir / "catalog-backfill.json"),
    ]
    state: dict = {}
    seen = 0
    marker = f'"stream":"{stream}"'.encode()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(b'{"type":"STATE"') and line.endswith(b"\n"):  # a line cut by the kill is none
                state = json.loads(line)["value"]
            elif seen < records and line.startswith(b'{"type":"RECORD"') and marker in line:
                seen += 1
                if seen == records:
                    process.kill()
        process.wait()
    return state


def backfill_scenarios(repeat: int, workdir: Path) -> list[tuple[str, str, str, str]]:
    """The whole account's first sync at 25 ms, uninterrupted and killed at 90 % of its messages then
    resumed from its last STATE: requests and seconds of the resumed run vs the uninterrupted one."""
    rows = []
    with Emulator(**ACCOUNT) as emulator:  # type: ignore[arg-type]
        emulator.faults(latency_ms=25)
        full = tap(emulator, workdir, "backfill")
        full_stats = emulator.stats()
        full_requests = full_stats.get("requests", 0)
        messages = full_requests and sum(
            1
            for line in (workdir / "output.jsonl").open()
            if '"stream":"messages"' in line and '"RECORD"' in line
        )
        state = killed_at(emulator, workdir, "messages", int(0.9 * messages))
        emulator.post("/_emulator/reset", {})
        emulator.faults(latency_ms=25)
        resumed = tap(emulator, workdir, "backfill", state=state)
        stats = emulator.stats()
        resumed_requests = stats.get("requests", 0)
        per_stream = ", ".join(
            f"{stream} {stats.get('requests:' + stream, 0):,} of {full_stats.get('requests:' + stream, 0):,}"
            for stream in pipeline_stack.TABLES
        )
        name = "25 ms latency, whole account's first sync killed at 90 % of its messages"
        share = (
            f"{resumed_requests / full_requests:.0%} of the requests, {resumed.seconds / full.seconds:.0%}"
        )
        rows += [
            timed(name, f"tap, uninterrupted: {full_requests:,} requests", full),
            timed(
                "", f"tap, resumed from the last STATE: {resumed_requests:,} requests ({per_stream})", resumed
            ),
            ("", "**resumed / uninterrupted**", f"**{share} of the time**", ""),
        ]
        print(
            f"backfill: uninterrupted {full_requests} requests {full.seconds:.1f}s, resumed "
            f"{resumed_requests} requests {resumed.seconds:.1f}s",
            flush=True,
        )
    return rows


DBT_DONE = re.compile(r"Done\. (PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+(?: NO-OP=\d+)? TOTAL=\d+)")
DBT_SECONDS = re.compile(r"Finished running .* \(([\d.]+)s\)")


@dataclass
class Build:
    """One `meltano run dbt-postgres:<command>` of one tree's transform/."""

    seconds: float  # wall time: Meltano, dbt starting and parsing, and the run
    dbt_seconds: float  # dbt's own "Finished running ... (N s)": the nodes on their threads
    done: str  # dbt's summary line, PASS=.. TOTAL=..
    nodes: dict[str, float]  # node -> its execution_time, from dbt's run_results.json
    verdict: str  # the marts against the emulator's figures ("" for a tree whose marts are not checked)


def node_costs(builds: list[Build]) -> str:
    """Where a step's time went, medians over its builds: models, tests and the seed summed, and the
    slowest nodes (a sum over 2 threads exceeds dbt's own time)."""
    median = {node: statistics.median(b.nodes.get(node, 0.0) for b in builds) for node in builds[0].nodes}
    kinds = {"model": 0.0, "test": 0.0, "seed": 0.0}
    for node, seconds in median.items():
        kinds[node.split(".", 1)[0]] = kinds.get(node.split(".", 1)[0], 0.0) + seconds
    slowest = sorted(median.items(), key=lambda item: -item[1])[:4]
    return (
        ", ".join(f"{kind}s {seconds:.1f} s" for kind, seconds in kinds.items() if seconds)
        + "; slowest "
        + ", ".join(f"{node.split('.')[2]} {seconds:.2f} s" for node, seconds in slowest)
    )


def models_scenarios(repeat: int, workdir: Path, before: Path | None) -> list[tuple[str, str, str, str]]:
    """`dbt build` of transform/ on the whole account, loaded by `meltano run tap-vobiz target-postgres`
    into the embedded PostgreSQL: the first build, the incremental build after six hours of activity
    and another load, and a full refresh of the same data (medians of `repeat`). With `before` (another
    tree, e.g. main's), its transform/ builds beside this one's on the same data, alternately (each
    into its own schema); this tree's marts are checked against the emulator's data after each build."""
    from harness import marts

    pipeline_stack.install_plugins()
    trees = ([("before", before.resolve() / "transform")] if before else []) + [("after", ROOT / "transform")]
    schemas = {"before": f"{marts.MARTS_SCHEMA}_before", "after": marts.MARTS_SCHEMA}
    sizes = {name: value for name, value in ACCOUNT.items() if name not in {"conversations", "messages"}}
    with (
        pipeline_stack.emulator(ACCOUNT["conversations"], ACCOUNT["messages"], 60, **sizes) as api,
        pipeline_stack.postgres(workdir / "postgres") as pg,
    ):
        env = pipeline_stack.meltano_env(
            api.api_url, pg, MELTANO_DATABASE_URI=f"sqlite:///{workdir / 'meltano.db'}"
        )

        def meltano_run(*blocks: str, **extra: str) -> tuple[float, str]:
            started = time.perf_counter()
            log = workdir / "meltano.log"
            pipeline_stack.meltano(
                "--environment", pipeline_stack.ENVIRONMENT, "run", *blocks, env={**env, **extra}, log=log
            )
            return time.perf_counter() - started, log.read_text()

        def build(tree: str, project: Path, command: str) -> Build:
            seconds, log = meltano_run(
                f"dbt-postgres:{command}",
                DBT_POSTGRES_PROJECT_DIR=str(project),
                DBT_POSTGRES_PROFILES_DIR=str(project / "profiles" / "postgres"),
                DBT_POSTGRES_SCHEMA=schemas[tree],
            )
            kept = workdir / f"dbt-{tree}-{command}-{len(list(workdir.glob(f'dbt-{tree}-{command}-*')))}.log"
            kept.write_text(log)  # each build's log kept beside the others (parsing, node times)
            results = json.loads((project / "target" / "run_results.json").read_text())["results"]
            verdict = ""
            if tree == "after":
                problems = marts.mart_differences(marts.loaded_marts(pg), api.get("/_emulator/export"))
                verdict = (
                    "the marts = the emulator's figures" if not problems else "MARTS DIFFER: " + problems[0]
                )
            done = Build(
                seconds,
                float(DBT_SECONDS.findall(log)[-1]),
                DBT_DONE.findall(log)[-1],
                {r["unique_id"]: r["execution_time"] for r in results},
                verdict,
            )
            print(f"models, {command}, {tree}: {seconds:.1f}s (dbt {done.dbt_seconds:.1f}s), "
                  f"{done.done}; {node_costs([done])}; {verdict}", flush=True)  # fmt: skip
            return done

        def in_turn(index: int) -> list[tuple[str, Path]]:
            """The trees in turn, the first one alternating: neither always builds on a warm cache."""
            return trees if index % 2 == 0 else trees[::-1]

        def step(title: str, builds: dict[str, list[Build]]) -> list[tuple[str, str, str, str]]:
            rows = []
            for tree, _ in trees:
                runs = builds[tree]
                seconds = statistics.median(b.seconds for b in runs)
                dbt_seconds = statistics.median(b.dbt_seconds for b in runs)
                detail = "; ".join(filter(None, [runs[-1].done, node_costs(runs), runs[-1].verdict]))
                rows.append((title, f"{tree}: {detail}", f"{seconds:.1f} s (dbt: {dbt_seconds:.1f} s)", ""))
                title = ""
            if before:
                ratio = statistics.median(b.dbt_seconds for b in builds["after"]) / statistics.median(
                    b.dbt_seconds for b in builds["before"]
                )
                wall = statistics.median(b.seconds for b in builds["after"]) / statistics.median(
                    b.seconds for b in builds["before"]
                )
                rows.append(("", "**after / before**", f"**{wall:.2f}x (dbt: {ratio:.2f}x)**", ""))
            return rows

        load, _ = meltano_run("tap-vobiz", "target-postgres")
        [(messages,)] = pg.query(f"SELECT count(*) FROM {pipeline_stack.SCHEMA}.messages")  # noqa: S608
        [(recipients,)] = pg.query(f"SELECT count(*) FROM {pipeline_stack.SCHEMA}.campaign_recipients")  # noqa: S608
        name = (
            f"dbt build (transform/), whole account in PostgreSQL ({messages:,} messages, "
            f"{recipients:,} recipients)"
        )
        rows = [(name, "meltano run tap-vobiz target-postgres (the load, for scale)", f"{load:.1f} s", "")]

        first: dict[str, list[Build]] = {tree: [] for tree, _ in trees}
        for index in range(repeat):
            for tree, project in in_turn(index):
                pg.execute(f"DROP SCHEMA IF EXISTS {schemas[tree]} CASCADE")
                first[tree].append(build(tree, project, "build"))
        rows += step("meltano run dbt-postgres:build, first build (the schema dropped before each)", first)

        incremental: dict[str, list[Build]] = {tree: [] for tree, _ in trees}
        loads = []
        for index in range(repeat):
            api.post("/_emulator/activity", SIX_HOURS)
            for collection, spec in ACCOUNT_CHANGES.items():
                api.post("/_emulator/changes", {"collection": collection, **spec})
            loads.append(meltano_run("tap-vobiz", "target-postgres")[0])
            for tree, project in in_turn(index):
                incremental[tree].append(build(tree, project, "build"))
        reload = f"{statistics.median(loads):.1f} s"
        rows.append(("", "+6 h: meltano run tap-vobiz target-postgres (incremental load)", reload, ""))
        rows += step("dbt-postgres:build, incremental (after each +6 h load)", incremental)

        refresh: dict[str, list[Build]] = {tree: [] for tree, _ in trees}
        for index in range(repeat):
            for tree, project in in_turn(index):
                refresh[tree].append(build(tree, project, "full-refresh"))
        rows += step("dbt-postgres:full-refresh, same data", refresh)
    return rows


# The capture family (issue 32): 1,000,000 signed deliveries as the receiver writes them, from two
# receiver processes, in 64 MiB segments; each a `message.status` with one status (sent, delivered
# or read of 333,334 messages), 2% of them retried by Vobiz (the same event_id) and 1% repeated by
# WhatsApp (a new event_id).
CAPTURE_DELIVERIES = 1_000_000
CAPTURE_SEGMENT_BYTES = 64 << 20
CAPTURE_BODY = (
    '{{"event_id":"{event_id}","event_type":"message.status","account_id":"MA_BENCH001",'
    '"occurred_at":"2026-11-0{day}T10:00:00Z","payload":{{"object":"whatsapp_business_account",'
    '"entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{'
    '"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111",'
    '"phone_number_id":"106540352242922"}},"statuses":[{{"id":"wamid.HBgM{message:012d}",'
    '"status":"{status}","timestamp":"{timestamp}","recipient_id":"9198{message:08d}",'
    '"conversation":{{"id":"c{message:08d}","origin":{{"type":"utility"}}}},'
    '"pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}}}]}}}}]}}]}}}}'
)


def write_capture(root: Path, deliveries: int) -> int:
    """A capture of `deliveries` lines (the format of docs/webhooks.md); returns how many distinct statuses
    (message, status) it holds."""
    statuses = ("sent", "delivered", "read")
    writers = [f"bench-{n}-0000abcd" for n in (1, 2)]
    files = {}
    sizes = dict.fromkeys(writers, 0)
    seqs = dict.fromkeys(writers, 1)
    for writer in writers:
        (root / "segments" / writer).mkdir(parents=True, exist_ok=True)
        files[writer] = (root / "segments" / writer / "000000000001.jsonl").open("wb")
    distinct, last_body, seen = 0, "", set()
    for number in range(deliveries):
        if number % 50 == 49:
            body = last_body  # a retry: the same delivery again
        else:
            message, step = divmod(distinct, 3)
            seen.add((message, step))
            event_id = f"{number:08x}-0000-4000-8000-{message:012x}"
            if number % 100 != 98:  # else WhatsApp repeats the last status under a new event_id
                distinct += 1
            body = CAPTURE_BODY.format(
                event_id=event_id,
                day=1 + step,
                message=message,
                status=statuses[step],
                timestamp=1_790_000_000 + message + step * 60,
            )
        last_body = body
        headers = '{"content-type":"application/json","x-webhook-event":"message.status"}'
        line = (
            '{"v":1,"received_at":"2026-11-01T10:00:00.000000Z","headers":'
            + headers
            + ',"body":'
            + json.dumps(body)
            + "}\n"
        ).encode()
        writer = writers[number % 2]
        if sizes[writer] + len(line) > CAPTURE_SEGMENT_BYTES:
            files[writer].close()
            seqs[writer] += 1
            sizes[writer] = 0
            files[writer] = (root / "segments" / writer / f"{seqs[writer]:012d}.jsonl").open("wb")
        files[writer].write(line)
        sizes[writer] += len(line)
    for file in files.values():
        file.close()
    return len(seen)


def capture_tap(workdir: Path, capture: Path, streams: tuple[str, ...], state: dict | None = None) -> Measure:
    """A run of the tap reading the capture for `streams` (no API stream selected)."""
    config = workdir / "capture-config.json"
    config.write_text(json.dumps({**AUTH, "webhook_capture": str(capture)}))
    discovered = subprocess.run(
        [str(BIN / "tap-vobiz"), "--config", str(config), "--discover"], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    catalog = workdir / "capture-catalog.json"
    catalog.write_text(json.dumps(select_streams(json.loads(discovered), streams)))
    command = [str(BIN / "tap-vobiz"), "--config", str(config), "--catalog", str(catalog)]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(workdir / "state.json")]

    return measure(command, records_emitted, workdir / "output.jsonl")


def capture_read(capture: Path) -> float:
    """Seconds the tap's capture reader takes to read and decode every delivery (no Singer output)."""
    from tap_vobiz.capture_reader import CaptureReader
    from tap_vobiz.capture_streams import read_delivery

    started = time.perf_counter()
    lines = 0
    for batch in CaptureReader(str(capture), {}, logging.getLogger("capture-bench")).batches():
        for line in batch.lines:
            if isinstance(read_delivery(line), str):
                raise SystemExit(f"not a delivery: {line[:200]!r}")
            lines += 1
    if lines != CAPTURE_DELIVERIES:
        raise SystemExit(f"the reader read {lines:,} deliveries of {CAPTURE_DELIVERIES:,}")
    return time.perf_counter() - started


def capture_scenarios(repeat: int, workdir: Path) -> list[tuple[str, str, str, str]]:
    """The tap reading a capture of 1,000,000 deliveries: each webhook stream alone, both, and a rerun."""
    capture = workdir / "capture"
    started = time.perf_counter()
    distinct = write_capture(capture, CAPTURE_DELIVERIES)
    print(
        f"capture: wrote {CAPTURE_DELIVERIES:,} deliveries in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    rows = []
    name = f"capture of {CAPTURE_DELIVERIES:,} deliveries, 2 writers"
    reads = [capture_read(capture) for _ in range(repeat)]
    seconds = statistics.median(reads)
    rows.append((name, "the reader alone (segments, lines, each line and body decoded), in process",
                 f"{seconds:.1f} s", f"{CAPTURE_DELIVERIES / seconds:,.0f} deliveries/s"))  # fmt: skip
    name = ""
    print(
        f"capture, reader alone: {seconds:.1f}s, {CAPTURE_DELIVERIES / seconds:,.0f} deliveries/s", flush=True
    )
    for streams in (("webhook_events",), ("message_statuses",), ("webhook_events", "message_statuses")):
        runs = [capture_tap(workdir, capture, streams) for _ in range(repeat)]
        run = medians(runs)
        read = CAPTURE_DELIVERIES * len(streams)
        label = f"tap, {' + '.join(streams)}: {run.records:,} records, {run.max_rss_mb:.0f} MB"
        rows.append((name, label, f"{run.seconds:.1f} s", f"{read / run.seconds:,.0f} deliveries/s"))
        name = ""
        print(f"capture, {'+'.join(streams)}: {run.seconds:.1f}s, {read / run.seconds:,.0f} deliveries/s, "
              f"{run.records:,} records (distinct statuses {distinct:,})", flush=True)  # fmt: skip
    rerun = capture_tap(workdir, capture, ("webhook_events", "message_statuses"), state=last_state(workdir))
    rows.append(
        ("", f"rerun from its STATE, nothing new: {rerun.records:,} records", f"{rerun.seconds:.1f} s", "")
    )
    print(f"capture, rerun: {rerun.seconds:.1f}s, {rerun.records} records", flush=True)
    return rows


# The `pacing` family (issue 29): a limit the tap must learn. Phases of (requests a second allowed,
# seconds), a token bucket of a second's requests answering 429 with Retry-After 1.
STEPS = [(20, 25), (60, 25), (30, 25)]
SETTLE = 5.0  # seconds of each phase left out of its share


def _served_between(served: list[float], start: float, end: float) -> int:
    return sum(1 for moment in served if start <= moment < end)


def limit_shares(report: dict, phases: list[tuple[float, float]]) -> tuple[list[float], float, float | None]:
    """Share of each phase's limit served (after its first `SETTLE` s), share of requests refused, and
    the seconds after the first raise until 2 s served at least 90 % of the raised limit."""
    served, refused = report["served"], report["refused"]
    end = sum(seconds for _, seconds in phases)
    shares, start, raised_at = [], 0.0, None
    for index, (limit, seconds) in enumerate(phases):
        shares.append(_served_between(served, start + SETTLE, start + seconds) / (limit * (seconds - SETTLE)))
        if raised_at is None and index and limit > phases[index - 1][0]:
            moment = start + 2
            while moment <= start + seconds:
                if _served_between(served, moment - 2, moment) >= 0.9 * limit * 2:
                    raised_at = moment - start
                    break
                moment += 0.1
            raised_at = raised_at if raised_at is not None else float("inf")
        start += seconds
    sent = _served_between(served, 0, end) + _served_between(refused, 0, end)
    return shares, _served_between(refused, 0, end) / max(sent, 1), raised_at


OFF = Path("pacer off")  # a client of the pacing family: this tree, its pacer off


def pacing_client(source: Path | None) -> dict[str, t.Any]:
    """The `tap` arguments of a pacing client: another tree, this one, or this one with its pacer off."""
    return {"pacer_off": True} if source == OFF else {"source": source}


def pacing_scenarios(repeat: int, workdir: Path, before: Path | None) -> list[tuple[str, str, str, str]]:
    """A moving limit, a far API and a fixed limit: the share of the limit the tap used and its 429s;
    and no limit at 25 ms and 0 ms; this tree beside `before` (another tree of the tap, e.g. main's)."""
    clients = ([("before", before)] if before else []) + [("after", None)]
    # The limited scenarios also run this tree with its pacer off: what the SDK's backoff alone does.
    limited = [*clients, ("pacer off", OFF)]
    rows: list[tuple[str, str, str, str]] = []

    def pct(value: float) -> str:
        return f"{value:.0%}"

    with Emulator(4000, 40_000) as emulator:
        emulator.faults(latency_ms=25)
        runs: dict[str, list] = {name: [] for name, _ in limited}
        schedule = [[sum(s for _, s in STEPS[:i]), rate] for i, (rate, _) in enumerate(STEPS) if i]
        for _ in range(repeat):
            for name, source in limited:
                emulator.post("/_emulator/rate-limit", {"per_second": STEPS[0][0], "schedule": schedule})
                tap(
                    emulator,
                    workdir,
                    "conversations",
                    stop_after=sum(s for _, s in STEPS),
                    **pacing_client(source),
                )
                runs[name].append(limit_shares(emulator.get("/_emulator/rate-limit"), STEPS))
                print(f"pacing, steps, {name}: {runs[name][-1]}", flush=True)
        title = "limit 20 -> 60 -> 30 req/s (25 s each), 25 ms latency"
        for name, _ in limited:
            shares = [statistics.median(run[0][i] for run in runs[name]) for i in range(len(STEPS))]
            refused = statistics.median(run[1] for run in runs[name])
            raised = statistics.median(run[2] for run in runs[name])
            phases = ", ".join(
                f"{limit}: {pct(share)}" for (limit, _), share in zip(STEPS, shares, strict=True)
            )
            figures = f"share of the limit {phases}; 429s {refused:.1%}; 90 % of 60 after {raised:.1f} s"
            rows.append((title, f"tap ({name})", figures, ""))
            title = ""

        emulator.faults(latency_ms=300)
        far = [(40, 30)]
        runs = {name: [] for name, _ in limited}
        for _ in range(repeat):
            for name, source in limited:
                emulator.post("/_emulator/rate-limit", {"per_second": 40})
                tap(emulator, workdir, "conversations", stop_after=30, **pacing_client(source))
                runs[name].append(limit_shares(emulator.get("/_emulator/rate-limit"), far))
                print(f"pacing, 300 ms, {name}: {runs[name][-1]}", flush=True)
        title = "limit 40 req/s, 300 ms latency (30 s)"
        for name, _ in limited:
            share = statistics.median(run[0][0] for run in runs[name])
            refused = statistics.median(run[1] for run in runs[name])
            rows.append((title, f"tap ({name})", f"share of the limit {pct(share)}; 429s {refused:.1%}", ""))
            title = ""

    with Emulator(600, 30_000) as emulator:
        emulator.faults(latency_ms=25)
        fixed: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in limited}
        for _ in range(repeat):
            for name, source in limited:
                emulator.post("/_emulator/rate-limit", {"per_second": 30})
                run = tap(emulator, workdir, "conversations", **pacing_client(source))
                report = emulator.get("/_emulator/rate-limit")
                served, refused = len(report["served"]), len(report["refused"])
                fixed[name].append((run.seconds, refused / (served + refused), served))
                print(f"pacing, fixed 30, {name}: {fixed[name][-1]}", flush=True)
        title = "limit 30 req/s, 25 ms latency, 600 conversations"
        for name, _ in limited:
            seconds = statistics.median(r[0] for r in fixed[name])
            refused = statistics.median(r[1] for r in fixed[name])
            needed = fixed[name][0][2]
            figures = f"{seconds:.1f} s = {seconds / (needed / 30):.2f}x the best; 429s {refused:.1%}"
            rows.append(
                (title, f"tap ({name}): {needed:,} requests, at best {needed / 30:.1f} s", figures, "")
            )
            title = ""

    for latency, size in ((25, (1000, 50_000)), (0, (1000, 100_000))):
        with Emulator(*size) as emulator:
            emulator.faults(latency_ms=latency)
            free: dict[str, list[Measure]] = {name: [] for name, _ in clients}
            plain: list[Measure] = []
            for _ in range(repeat):
                if not latency:
                    plain.append(reference(emulator, "conversations"))
                for name, source in clients:
                    free[name].append(tap(emulator, workdir, "conversations", source=source))
            title = f"no limit, {latency} ms latency, {size[0]:,} conversations / {size[1]:,} messages"
            if plain:
                rows.append(timed(title, "reference client", medians(plain)))
                title = ""
            for name, _ in clients:
                share = medians(free[name]).per_second / medians(plain).per_second if plain else None
                client = f"tap ({name})" + (f": {share:.0%} of the reference's rate" if share else "")
                rows.append(timed(title, client, medians(free[name])))
                title = ""
            print(f"pacing, no limit {latency} ms: " + ", ".join(
                f"{name} {medians(free[name]).seconds:.1f}s" for name, _ in clients), flush=True)  # fmt: skip
    return rows


# The `others` family (issue 29): the tools a user would pick instead of the tap, each in a venv of its
# own under the user's cache folder (made on first use from the pins beside its script, reused after),
# reading the same conversations and messages from the same emulator, at the same fixed limit.
OTHERS = ROOT / "benchmarks" / "others"
TOOLS_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tap-vobiz-benchmarks"
FIXED_LIMIT = 30  # requests a second, as the pacing family's fixed limit


def tool_python(requirements: Path) -> Path:
    """The Python of a venv holding these pinned requirements: made on first use, reused after (a
    venv is named after its pins' digest, so a change of pins makes a new one)."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = TOOLS_CACHE / f"{requirements.stem.removeprefix('requirements-')}-{digest}"
    python, done = venv / "bin" / "python", venv / "installed"
    if not done.exists():
        print(f"others: installing {requirements.name} into {venv} (once)", flush=True)
        steps = (
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(requirements)],
        )  # fmt: skip
        for step in steps:
            made = subprocess.run(step, capture_output=True, text=True, check=False)
            if made.returncode != 0:
                raise SystemExit(f"could not install {requirements.name}: {made.stderr.strip()[-1500:]}")
        done.write_text(subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True,
                                       text=True, check=True).stdout)  # fmt: skip
    return python


def tool_version(python: Path, package: str) -> str:
    """The version of a package installed in a tool's venv (from its `pip freeze` at install)."""
    for line in (python.parent.parent / "installed").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.lower() == package:
            return version
    return "?"


def read_ids(output: Path) -> dict[str, list[str]]:
    """The ids of the conversations and messages a client read: the tap's RECORD lines, or the JSON
    object another tool's script prints as its last line."""
    if output.name == "output.jsonl":
        ids: dict[str, list[str]] = {"conversations": [], "messages": []}
        with output.open() as lines:
            for line in lines:
                if line.startswith('{"type":"RECORD"'):
                    message = json.loads(line)
                    ids[message["stream"]].append(message["record"]["id"])
        return ids
    return json.loads(output.read_text().splitlines()[-1])


def missed(read: dict[str, list[str]], served: dict[str, set[str]]) -> str:
    """What a client read against what the emulator serves: 'exact', or the records missed and extra."""
    problems = []
    for stream, want in served.items():
        got = read.get(stream, [])
        lost, duplicates = len(want - set(got)), len(got) - len(set(got))
        if lost or duplicates or set(got) - want:
            problems.append(f"{stream}: {len(set(got) & want):,} of {len(want):,} read, "
                            f"{duplicates:,} twice, {len(set(got) - want):,} not served")  # fmt: skip
    return "; ".join(problems) or "exact"


def others_scenarios(repeat: int, workdir: Path) -> list[tuple[str, str, str, str]]:
    """The tap, dlt's `rest_api` and Airbyte's declarative CDK at a fixed 30 req/s, alternately: time
    against requests / limit, the share of requests refused, and whether each read every record."""
    dlt, airbyte = (
        tool_python(OTHERS / "requirements-dlt.txt"),
        tool_python(OTHERS / "requirements-airbyte.txt"),
    )
    versions = {"dlt": tool_version(dlt, "dlt"), "airbyte": tool_version(airbyte, "airbyte-cdk")}
    rows: list[tuple[str, str, str, str]] = []
    with Emulator(600, 30_000) as emulator:
        emulator.faults(latency_ms=25)
        export = emulator.get("/_emulator/export")
        served_ids = {
            "conversations": {row["id"] for row in export["conversations"]},
            "messages": {row["id"] for rows in export["messages"].values() for row in rows},
        }
        auth = [emulator.api_url, AUTH["auth_id"], AUTH["auth_token"]]

        def run(client: str) -> tuple[float, dict[str, list[str]]]:
            """One read by a client: its process's wall time and the ids it read."""
            if client == "tap-vobiz":
                return tap(emulator, workdir, "others").seconds, read_ids(workdir / "output.jsonl")
            folder = Path(tempfile.mkdtemp(prefix=f"{client}-", dir=workdir))
            command = (
                [str(dlt), str(OTHERS / "dlt_rest_api.py"), *auth, str(folder)]
                if client == "dlt"
                else [str(airbyte), str(OTHERS / "airbyte_declarative.py"), *auth]
            )
            seconds = measure(command, lambda _: 0, folder / "stdout").seconds
            return seconds, read_ids(folder / "stdout")

        family_catalog(workdir, "others")  # before the first run: its time is the read's alone
        clients = ("tap-vobiz", "dlt", "airbyte")
        runs: dict[str, list[dict[str, t.Any]]] = {client: [] for client in clients}
        for _ in range(repeat):
            for client in clients:
                emulator.post("/_emulator/rate-limit", {"per_second": FIXED_LIMIT})
                seconds, ids = run(client)
                report = emulator.get("/_emulator/rate-limit")
                served, refused = len(report["served"]), len(report["refused"])
                moments = report["served"] + report["refused"]
                runs[client].append({
                    "wall": seconds, "first": min(moments), "last": max(moments), "served": served,
                    "refused": refused / (served + refused), "check": missed(ids, served_ids),
                })  # fmt: skip
                print(f"others, fixed {FIXED_LIMIT}, {client}: {runs[client][-1]}", flush=True)

    title = (f"limit {FIXED_LIMIT} req/s, 25 ms latency, 600 conversations / "
             f"{len(served_ids['messages']):,} messages")  # fmt: skip
    labels = {
        "tap-vobiz": "tap (default settings)",
        "dlt": f"dlt {versions['dlt']} `rest_api`, 8 workers, into DuckDB",
        "airbyte": f"airbyte-cdk {versions['airbyte']} declarative, concurrency 8",
    }
    for client in clients:
        done = runs[client]
        requests = statistics.median(r["served"] for r in done)
        best = requests / FIXED_LIMIT
        first, last = statistics.median(r["first"] for r in done), statistics.median(r["last"] for r in done)
        wall = statistics.median(r["wall"] for r in done)
        refused = statistics.median(r["refused"] for r in done)
        checks = sorted({r["check"] for r in done})
        figures = (f"first request at {first:.1f} s, last at {last:.1f} s = {last / best:.2f}x the best; "
                   f"whole run {wall:.1f} s; "
                   f"429s {refused:.1%}; records: {', '.join(checks)}")  # fmt: skip
        rows.append((title, f"{labels[client]}: {requests:,.0f} requests, at best {best:.1f} s", figures, ""))
        title = ""
    return rows


def scenarios(
    family: str, repeat: int, workdir: Path, before: Path | None
) -> list[tuple[str, str, str, str]]:
    """The three scenarios of one family of streams, as table rows."""
    if family == "capture":
        return capture_scenarios(repeat, workdir)
    if family == "account":
        return account_scenarios(repeat, workdir)
    if family == "backfill":
        return backfill_scenarios(repeat, workdir)
    if family == "models":
        return models_scenarios(repeat, workdir, before)
    if family == "webhooks":
        return webhook_load.scenarios(repeat)
    if family == "pacing":
        return pacing_scenarios(repeat, workdir, before)
    if family == "others":
        return others_scenarios(repeat, workdir)
    scales, rows = SCALES[family], []
    size, name = scales["latency"]
    with Emulator(*size) as emulator:
        emulator.faults(latency_ms=25)
        one, eight = [], []
        for _ in range(repeat):
            one.append(tap(emulator, workdir, family, max_workers=1))
            eight.append(tap(emulator, workdir, family))
        one_m, eight_m = medians(one), medians(eight)
        rows += [
            timed(f"25 ms latency, {name}", "tap, max_workers=1", one_m),
            timed("", "tap, default settings", eight_m),
            ("", "**speed-up, default vs 1 worker**", f"**{one_m.seconds / eight_m.seconds:.1f}x**", ""),
        ]
        print(f"{family}, 25 ms: 1 worker {one_m.seconds:.1f}s, default {eight_m.seconds:.1f}s", flush=True)

    size, name = scales["zero"]
    with Emulator(*size) as emulator:
        ref, default, single = [], [], []
        for _ in range(repeat):
            ref.append(reference(emulator, family))
            default.append(tap(emulator, workdir, family))
            single.append(tap(emulator, workdir, family, max_workers=1))
        ref_m, default_m, single_m = medians(ref), medians(default), medians(single)
        default_ratio = default_m.per_second / ref_m.per_second
        single_ratio = single_m.per_second / ref_m.per_second
        rows += [
            timed(f"0 ms latency, {name}", "reference client", ref_m),
            timed("", "tap, default settings", default_m),
            timed("", "tap, max_workers=1", single_m),
            ("", "**tap (default settings) / reference**", f"**{default_ratio:.0%}**", ""),
            ("", "**tap (max_workers=1) / reference**", f"**{single_ratio:.0%}**", ""),
        ]  # fmt: skip
        print(
            f"{family}, 0 ms: reference {ref_m.per_second:,.0f}/s, tap {default_m.per_second:,.0f}/s",
            flush=True,
        )

    rows.append((f"peak memory (max RSS), full sync of {family}, default settings", "tap", "", ""))
    for size, name in scales["memory"]:
        with Emulator(*size) as emulator:
            run = tap(emulator, workdir, family)
        rows.append(("", name, f"{run.max_rss_mb:.0f} MB", f"{run.per_second:,.0f}"))
        print(f"{family}, memory: {name}, {run.max_rss_mb:.0f} MB", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median); default 3")
    parser.add_argument(
        "--only", choices=sorted(FAMILIES), action="append", help="families to run (default: all)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another tree (e.g. a worktree of main): its tap beside this one in the pacing family, "
        "its transform/ beside this one in the models family",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tap-vobiz-bench-"))
    print(f"machine: {machine()}", flush=True)
    rows: list[tuple[str, str, str, str]] = []
    for family in args.only or list(FAMILIES):
        rows += scenarios(family, args.repeat, workdir, args.before)

    print()
    print(f"Machine: {machine()}; median of {args.repeat} runs each.")
    print()
    print("| scenario | client | wall time / ratio | records/s |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
