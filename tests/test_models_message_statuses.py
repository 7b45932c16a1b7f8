"""The models merge pulled and pushed statuses (built by dbt-duckdb on what target-duckdb loaded): each
message's current status is the latest by WhatsApp's time, exact when it came after the lookback ended,
and the status-timing marts give the seconds WhatsApp's own times give."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from harness.pipeline_stack import select_streams
from scripts import loaders_check
from tests.tap_runner import run_tap
from tests.test_capture_streams import CREDENTIALS, _discover
from tests.test_models_portable import READ_MARTS, _dbt, _value, dbt_venv  # noqa: F401
from tests.webhook_capture_files import append, envelope, line, status, status_value
from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import RunningEmulator

WITH_STATUSES = '{"vobiz_using_message_statuses": true}'
MARTS = (
    "vobiz__messages",
    "vobiz__message_status_timing",
    "vobiz__message_status_timing_daily",
    "int_vobiz__message_status_history",
)


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _load(singer_output: str, warehouse) -> None:
    """target-duckdb into `warehouse`, which keeps what earlier loads wrote (rows upserted by key)."""
    venv = loaders_check.install("target-duckdb", loaders_check.LOADERS["target-duckdb"])
    config = warehouse.with_suffix(".config.json")
    config.write_text(json.dumps({"path": str(warehouse), "default_target_schema": "vobiz"}))
    subprocess.run(
        [str(venv / "bin" / "target-duckdb"), "--config", str(config)],
        input=singer_output, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip


def _marts(venv, warehouse) -> dict[str, list[dict]]:
    printed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", READ_MARTS, str(warehouse), *MARTS],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {
        mart: [{column: _value(value) for column, value in row.items()} for row in rows]
        for mart, rows in json.loads(printed).items()
    }


def _capture_run(tmp_path, capture, state=None):
    config = {**CREDENTIALS, "webhook_capture": str(capture)}
    catalog = tmp_path / "statuses-catalog.json"
    catalog.write_text(json.dumps(select_streams(_discover(config, tmp_path), ("message_statuses",))))
    run = run_tap(config, tmp_path, state=state, args=("--catalog", str(catalog)))
    assert run.returncode == 0, run.stderr
    return run


def _percentile(values: list[float], fraction: float) -> float | None:
    """percentile_cont: linear interpolation between the closest ranks."""
    values = sorted(values)
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def test_a_status_pushed_after_the_lookback_ended_reaches_the_marts_exact(dbt_venv, tmp_path):  # noqa: F811
    dataset = Dataset(8, 200, days=30, contacts=20)
    with RunningEmulator(dataset) as emulator:
        pulled = loaders_check.tap_output(emulator.api_url, tmp_path).read_text()
    served = dataset.export()
    messages = [m for items in served["messages"].values() for m in items]
    newest = max(_time(m["created_at"]) for m in messages)
    outbound = sorted(
        (m for m in messages if m["direction"] == "outbound" and m.get("meta_message_id")),
        key=lambda m: m["created_at"],
    )
    # Old (more than vobiz_lookback_days before the newest message), not read by the API's account.
    late = next(
        m
        for m in outbound
        if m["status"] in {"sent", "delivered"} and _time(m["created_at"]) < newest - dt.timedelta(days=5)
    )
    moved = next(m for m in outbound if m["status"] in {"sent", "delivered", "read"} and m is not late)
    ahead = next(m for m in outbound if m["status"] == "read" and m not in (late, moved))
    capture = tmp_path / "capture"

    def at(message: dict, seconds: int) -> int:
        return _unix(_time(message["created_at"])) + seconds

    read_moved = envelope(
        "message.status", status_value(status(moved["meta_message_id"], "read", at(moved, 60)))
    )
    delivered_moved = status(moved["meta_message_id"], "delivered", at(moved, 30))
    append(
        capture,
        "w1",
        1,
        line(read_moved),  # arrives first; WhatsApp's times say it came last
        line(envelope("message.status", status_value(delivered_moved))),
        line(read_moved),  # Vobiz retries it
        line(
            envelope("message.status", status_value(status(moved["meta_message_id"], "sent", at(moved, 5))))
        ),
        line(envelope("message.status", status_value(delivered_moved))),  # WhatsApp repeats it
        line(envelope("message.status", status_value(status(late["meta_message_id"], "sent", at(late, 2))))),
        line(
            envelope("message.status", status_value(status(ahead["meta_message_id"], "sent", at(ahead, 3))))
        ),
        line(envelope("message.status", status_value(status("wamid.NOT-PULLED-YET", "sent", at(late, 9))))),
    )
    first = _capture_run(tmp_path, capture)
    assert len(first.records["message_statuses"]) == 6
    warehouse = tmp_path / "warehouse.duckdb"
    _load(pulled + "\n".join(json.dumps(m) for m in first.messages) + "\n", warehouse)

    built = _dbt(
        dbt_venv, "duckdb", "build", "--vars", WITH_STATUSES, env={"DBT_DUCKDB_PATH": str(warehouse)}
    )

    assert "ERROR=0" in built and "WARN=0" in built, built[-3000:]
    marts = _marts(dbt_venv, warehouse)
    rows = {row["message_id"]: row for row in marts["vobiz__messages"]}
    assert len(rows) == len(messages)
    assert (rows[moved["id"]]["status"], rows[moved["id"]]["status_at"]) == (
        "read",
        _time(moved["created_at"]) + dt.timedelta(seconds=60),
    )
    # Its pushed `sent` is behind what the API says: the API's status stands.
    assert (rows[late["id"]]["status"], rows[late["id"]]["status_at"]) == (late["status"], None)
    assert (rows[ahead["id"]]["status"], rows[ahead["id"]]["status_at"]) == ("read", None)
    untouched = [m for m in messages if m not in (late, moved, ahead)]
    assert [rows[m["id"]]["status"] for m in untouched] == [m["status"] for m in untouched]
    timing = {row["message_id"]: row for row in marts["vobiz__message_status_timing"]}
    assert set(timing) == {late["id"], moved["id"], ahead["id"]}
    # A status whose message is not pulled (yet) is kept, waiting for it.
    waiting = [r for r in marts["int_vobiz__message_status_history"] if r["wamid"] == "wamid.NOT-PULLED-YET"]
    assert [(r["message_id"], r["status"], r["status_source"]) for r in waiting] == [
        (None, "sent", "webhook")
    ]
    assert (
        timing[moved["id"]]["seconds_to_sent"],
        timing[moved["id"]]["seconds_to_delivered"],
        timing[moved["id"]]["seconds_to_read"],
    ) == (5, 30, 60)

    # Ten days after the late message was created, long after the lookback: WhatsApp says it was read.
    read_late = at(late, 10 * 86400)
    append(
        capture,
        "w1",
        1,
        line(envelope("message.status", status_value(status(late["meta_message_id"], "read", read_late)))),
    )
    second = _capture_run(tmp_path, capture, state=first.last_state)
    assert [r["status"] for r in second.records["message_statuses"]] == ["read"]
    _load("\n".join(json.dumps(m) for m in second.messages) + "\n", warehouse)

    rebuilt = _dbt(
        dbt_venv, "duckdb", "build", "--vars", WITH_STATUSES, env={"DBT_DUCKDB_PATH": str(warehouse)}
    )

    assert "ERROR=0" in rebuilt and "WARN=0" in rebuilt, rebuilt[-3000:]
    marts = _marts(dbt_venv, warehouse)
    rows = {row["message_id"]: row for row in marts["vobiz__messages"]}
    assert (rows[late["id"]]["status"], rows[late["id"]]["status_at"]) == (
        "read",
        dt.datetime.fromtimestamp(read_late, dt.timezone.utc),
    )
    assert [rows[m["id"]]["status"] for m in untouched] == [m["status"] for m in untouched]
    timing = {row["message_id"]: row for row in marts["vobiz__message_status_timing"]}
    assert timing[late["id"]]["seconds_to_read"] == 10 * 86400
    # p50/p90 per channel, template and day, computed here from the pushed times.
    groups: dict[tuple, list[dict]] = {}
    seconds = {late["id"]: (2, None, 10 * 86400), moved["id"]: (5, 30, 60), ahead["id"]: (3, None, None)}
    by_id = {m["id"]: m for m in messages}
    for message_id in seconds:
        m = by_id[message_id]
        template = json.loads(m["content"]).get("name") if m["type"] == "template" else None
        day = dt.date.fromisoformat(m["created_at"][:10])  # the mart's day, read back as a date
        groups.setdefault((m["channel_id"], template, day), []).append(message_id)
    daily = {
        (r["channel_id"], r["template_name"], r["day"]): r
        for r in marts["vobiz__message_status_timing_daily"]
    }
    assert set(daily) == set(groups)
    for key, ids in groups.items():
        for index, step in enumerate(("sent", "delivered", "read")):
            values = [seconds[i][index] for i in ids if seconds[i][index] is not None]
            assert daily[key][f"p50_seconds_to_{step}"] == _percentile(values, 0.5)
            assert daily[key][f"p90_seconds_to_{step}"] == _percentile(values, 0.9)
        assert daily[key]["messages"] == len(ids)


def test_a_status_that_arrives_before_its_message_is_kept_and_joins_it_once_loaded(dbt_venv, tmp_path):  # noqa: F811
    dataset = Dataset(8, 200, days=30, contacts=20, seed=11)
    with RunningEmulator(dataset) as emulator:
        pulled = loaders_check.tap_output(emulator.api_url, tmp_path).read_text()
    messages = [m for items in dataset.export()["messages"].values() for m in items]
    newest = max(_time(m["created_at"]) for m in messages)
    # An old message (before the incremental marts' window), as a pull that missed it would leave it.
    early = next(
        m
        for m in sorted(messages, key=lambda m: m["created_at"])
        if m["direction"] == "outbound"
        and m["status"] in {"sent", "delivered"}
        and m.get("meta_message_id")
        and _time(m["created_at"]) < newest - dt.timedelta(days=5)
    )
    read_at = _unix(_time(early["created_at"])) + 120
    capture = tmp_path / "capture"
    append(
        capture,
        "w1",
        1,
        line(envelope("message.status", status_value(status(early["meta_message_id"], "read", read_at)))),
    )
    pushed = _capture_run(tmp_path, capture)
    without_it = "".join(
        text + "\n" for text in pulled.splitlines() if not (early["id"] in text and '"type":"RECORD"' in text)
    )
    assert len(without_it) < len(pulled)
    warehouse = tmp_path / "warehouse.duckdb"
    _load(without_it + "".join(json.dumps(m) + "\n" for m in pushed.messages), warehouse)
    build = ("build", "--vars", WITH_STATUSES)

    first = _dbt(dbt_venv, "duckdb", *build, env={"DBT_DUCKDB_PATH": str(warehouse)})

    assert "ERROR=0" in first, first[-3000:]
    marts = _marts(dbt_venv, warehouse)
    waiting = [
        r for r in marts["int_vobiz__message_status_history"] if r["wamid"] == early["meta_message_id"]
    ]
    assert [(r["message_id"], r["status"]) for r in waiting] == [(None, "read")]
    assert early["id"] not in {r["message_id"] for r in marts["vobiz__messages"]}

    _load(pulled, warehouse)  # the next pull brings the message
    second = _dbt(dbt_venv, "duckdb", *build, env={"DBT_DUCKDB_PATH": str(warehouse)})

    assert "ERROR=0" in second, second[-3000:]
    marts = _marts(dbt_venv, warehouse)
    rows = {r["message_id"]: r for r in marts["vobiz__messages"]}
    assert (rows[early["id"]]["status"], rows[early["id"]]["status_at"]) == (
        "read",
        dt.datetime.fromtimestamp(read_at, dt.timezone.utc),
    )
    assert len(rows) == len(messages)
    timing = {r["message_id"]: r for r in marts["vobiz__message_status_timing"]}
    assert timing[early["id"]]["seconds_to_read"] == 120
