"""Through Meltano and PostgreSQL: a message read ten days after the tap's lookback ended is `read` in the
marts, from the status WhatsApp pushed (the API cannot tell it: its pull never reads that message again)."""

from __future__ import annotations

import datetime as dt
import json

from harness import pipeline_stack as stack
from tests.test_meltano import meltano_lock, meltano_plugins, own_meltano_files  # noqa: F401
from tests.webhook_capture_files import append, envelope, line, status, status_value

WITH_STATUSES = json.dumps({"vobiz_using_message_statuses": True})


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_message_read_ten_days_after_the_lookback_ended_is_read_in_the_marts(
    meltano_plugins,  # noqa: F811
    start_emulator,
    warehouse,
    tmp_path,
):
    emulator = start_emulator(20, 600, days=20)
    served = emulator.state.dataset.export()
    messages = [m for items in served["messages"].values() for m in items]
    newest = max(_time(m["created_at"]) for m in messages)
    late = next(
        m
        for m in sorted(messages, key=lambda m: m["created_at"])
        if m["direction"] == "outbound"
        and m["status"] in {"sent", "delivered"}
        and m.get("meta_message_id")
        and _time(m["created_at"]) < newest - dt.timedelta(days=5)
    )
    created = int(_time(late["created_at"]).timestamp())
    capture = tmp_path / "capture"
    append(
        capture,
        "w1",
        1,
        line(envelope("message.status", status_value(status(late["meta_message_id"], "sent", created + 2)))),
    )
    env = stack.meltano_env(
        emulator.api_url,
        warehouse,
        **own_meltano_files(tmp_path),
        TAP_VOBIZ_WEBHOOK_CAPTURE=str(capture),
    )

    def load_and_build(name: str) -> None:
        with meltano_lock(shared=True):
            stack.meltano("--environment", "demo", "run", "tap-vobiz", "target-postgres", env=env,
                          log=tmp_path / f"{name}-run.log")  # fmt: skip
            stack.meltano("--environment", "demo", "invoke", "dbt-postgres", "build", "--vars", WITH_STATUSES,
                          env=env, log=tmp_path / f"{name}-build.log")  # fmt: skip

    def message_row() -> tuple:
        [row] = warehouse.query(
            "SELECT status, status_at FROM vobiz_analytics.vobiz__messages WHERE message_id = %s", late["id"]
        )
        return row

    load_and_build("first")
    assert message_row() == (late["status"], None)  # its pushed `sent` is behind the API's status

    # Read 3 days (the lookback) + 10 days after it was created: the tap's next run does not pull it.
    read_at = created + (3 + 10) * 86400
    append(
        capture,
        "w1",
        1,
        line(envelope("message.status", status_value(status(late["meta_message_id"], "read", read_at)))),
    )
    append(
        capture,
        "w1",
        2,
        line(envelope("message.status", status_value(status(late["meta_message_id"], "read", read_at)))),
    )
    load_and_build("second")

    status_at = dt.datetime.fromtimestamp(read_at, dt.timezone.utc).replace(tzinfo=None)
    assert message_row() == ("read", status_at)
    assert "Reading messages from" in (tmp_path / "second-run.log").read_text()
    [(api_status,)] = warehouse.query(f"SELECT status FROM {stack.SCHEMA}.messages WHERE id = %s", late["id"])  # noqa: S608
    assert api_status == late["status"]  # what the pull still says
    loaded = warehouse.query(f"SELECT id FROM {stack.SCHEMA}.message_statuses ORDER BY id")  # noqa: S608
    assert [row[0] for row in loaded] == sorted(
        f"{late['meta_message_id']}|{name}|{dt.datetime.fromtimestamp(t, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
        for name, t in (("sent", created + 2), ("read", read_at))
    )
    timing = warehouse.query(
        "SELECT seconds_to_sent, seconds_to_read FROM vobiz_analytics.vobiz__message_status_timing "
        "WHERE message_id = %s",
        late["id"],
    )
    assert timing == [(2, (3 + 10) * 86400)]
