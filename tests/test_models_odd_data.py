"""The warehouse models on data the API allows but the emulator's tidy account does not have: a
timestamp the tap set aside as malformed, categories and statuses outside the documented ones,
a failed send before the reply, Meta's object form of a template language, a call log the tap
re-read long after its day, a stream left unselected, a session that is not in UTC.

Each scenario writes the loader's tables itself (`tests/dbt_warehouse.py`), on DuckDB and on
PostgreSQL, and runs `dbt build` on them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
import uuid

import pytest

from tests import dbt_warehouse
from tests.dbt_warehouse import RawTables

CHANNEL, CONTACT, OTHER_CONTACT = "ch-1", "ct-1", "ct-2"
DAY = dt.date(2026, 1, 10)
RELOADED = "_sdc_batched_at = '2026-02-02 00:00:00', _sdc_extracted_at = '2026-02-02 00:00:00'"
LATER = "2026-01-20T08:00:00Z"  # a day far past DAY: any event-time window of the marts ends after DAY


def _conversation(cid: str, category: str, started_at: str | None, **extra: object) -> dict:
    return {"id": cid, "account_id": "MA_1", "channel_id": CHANNEL, "contact_id": CONTACT,
            "category": category, "is_billable": True, "status": "closed", "started_at": started_at,
            **extra}  # fmt: skip


def _message(
    mid: str, cid: str, direction: str, status: str, created_at: str | None, **extra: object
) -> dict:
    return {"id": mid, "account_id": "MA_1", "channel_id": CHANNEL, "contact_id": CONTACT,
            "conversation_id": cid, "direction": direction, "type": "text", "status": status,
            "content": '{"body": "hi"}', "content_json": {"body": "hi"}, "created_at": created_at,
            **extra}  # fmt: skip


def account() -> dict[str, list[dict]]:
    """One channel's account with every oddity of the scenarios."""
    template_content = {"name": "promo", "language": {"code": "en_US", "policy": "deterministic"}}
    failed = {
        "status": "failed",
        "error_code": "131026",
        "error_desc": "Message undeliverable",
        "created_at": "2026-01-10T09:56:00Z",
    }
    recipients = [{"id": f"r-{i}", "campaign_id": "cp-1", "contact_id": CONTACT, **failed} for i in range(9)]
    delivered = {
        "sent_at": "2026-01-10T10:00:00Z",
        "delivered_at": "2026-01-10T10:00:05Z",
        "phone_number": "+15550101",
        "meta_message_id": "wamid.R9",
    }
    recipients.append(
        {"id": "r-9", "campaign_id": "cp-1", "contact_id": OTHER_CONTACT, "status": "delivered", **delivered}
    )
    # A status the docs do not list: counted in `other_status`, not lost.
    recipients.append(
        {"id": "r-10", "campaign_id": "cp-1", "contact_id": OTHER_CONTACT, "status": "expired",
         "created_at": "2026-01-10T09:56:00Z"}
    )  # fmt: skip
    return {
        "channels": [
            {"id": CHANNEL, "account_id": "MA_1", "phone_number": "+15550001", "display_name": "Support"}
        ],
        "contacts": [
            {"id": CONTACT, "account_id": "MA_1", "phone_number": "+15550100", "name": "Ada"},
            {"id": OTHER_CONTACT, "account_id": "MA_1", "phone_number": "+15550101", "name": "Bo"},
        ],
        "templates": [
            {
                "id": "tp-1",
                "channel_id": CHANNEL,
                "name": "promo",
                "language": "en_US",
                "category": "marketing",
                "status": "approved",
            }
        ],
        "canned_responses": [{"id": "cr-1", "shortcut": "/hi", "content": "Hello"}],
        "conversations": [
            _conversation("cv-1", "service", "2026-01-10T09:00:00Z"),
            _conversation("cv-2", "marketing_lite", "2026-01-10T10:00:00Z"),
            _conversation("cv-3", "authentication_international", "2026-01-10T10:30:00Z"),
            _conversation("cv-4", "marketing", "2026-01-10T11:00:00Z"),
            # The tap set an unparseable started_at aside: null, the text in malformed_fields.
            _conversation("cv-5", "service", None, malformed_fields={"started_at": "10/01/2026"}),
            _conversation("cv-6", "service", LATER, is_billable=False),
        ],
        "messages": [
            _message("m-1", "cv-1", "inbound", "read", "2026-01-10T09:00:00Z"),
            _message("m-2", "cv-1", "outbound", "failed", "2026-01-10T09:00:30Z"),  # not a response
            _message("m-3", "cv-1", "outbound", "delivered", "2026-01-10T11:00:00Z"),  # the response
            _message("m-4", "cv-1", "outbound", "failed", "2026-01-10T12:00:00Z"),
            _message("m-5", "cv-1", "inbound", "read", None, malformed_fields={"created_at": "yesterday"}),
            _message(
                "m-6",
                "cv-4",
                "outbound",
                "delivered",
                "2026-01-10T11:00:00Z",
                type="template",
                content=json.dumps(template_content),
                content_json=template_content,
            ),
            _message("m-7", "cv-6", "inbound", "read", LATER),
            # The campaign's send to r-9, listed in a conversation too (the same wamid).
            _message(
                "m-9",
                "cv-4",
                "outbound",
                "delivered",
                "2026-01-10T10:00:00Z",
                type="template",
                content=json.dumps(template_content),
                content_json=template_content,
                meta_message_id="wamid.R9",
            ),
        ],
        "campaigns": [
            {
                "id": "cp-1",
                "channel_id": CHANNEL,
                "name": "January",
                "template_id": "tp-1",
                "status": "completed",
                "created_at": "2026-01-10T09:55:00Z",
            }
        ],
        "campaign_recipients": recipients,
        "call_logs": [
            {
                "id": "call-1",
                "account_id": "MA_1",
                "channel_id": CHANNEL,
                "direction": "inbound",
                "from_number": "+15550100",
                "to_number": "+15550001",
                "status": "ringing",
                "started_at": "2026-01-10T13:00:00Z",
                "duration_seconds": 0,
                "updated_at": "2026-01-10T13:00:00Z",
            }
        ],
    }


@pytest.fixture(scope="module")
def dbt_venv():
    return dbt_warehouse.install()


class Built(t.NamedTuple):
    raw: RawTables
    build: t.Any


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def adapter(request) -> str:
    return request.param


# A scenario whose SQL is the same on both adapters (no adapter-specific macro decides it, and
# tests/test_meltano.py builds the incremental marts on PostgreSQL): its PostgreSQL half is one of
# the long checks (`pytest -m long`, docs/development.md), out of `make test`.
ADAPTER_NEUTRAL = pytest.mark.parametrize(
    "adapter", ["duckdb", pytest.param("postgres", marks=pytest.mark.long)], indirect=True
)


@pytest.fixture(scope="module")
def warehouses(adapter, dbt_venv, request, tmp_path_factory):
    """`new(name, **options)`: an empty loader schema on the adapter of the test."""

    def new(name: str, *, zoned: bool = False) -> RawTables:
        if adapter == "duckdb":
            where: t.Any = tmp_path_factory.mktemp(name) / "warehouse.duckdb"
        else:
            # The server is the test process's: a module set up again on it makes new databases.
            server = request.getfixturevalue("postgres_server")
            where = server.new_database(f"{name}_{adapter}_{uuid.uuid4().hex[:8]}")
        return RawTables(adapter, dbt_venv, where, zoned=zoned)

    return new


@pytest.fixture(scope="module")
def odd(warehouses) -> Built:
    """The account above, loaded once and built."""
    raw = warehouses("odd")
    raw.create(account())
    return Built(raw, raw.dbt("build"))


def _one(rows: list[dict], **where: object) -> dict:
    [row] = [r for r in rows if all(str(r[k]) == str(v) for k, v in where.items())]
    return row


def test_a_malformed_timestamp_leaves_its_row_out_of_the_daily_mart_and_the_build_passes(odd):
    assert odd.build.returncode == 0, odd.build.stdout[-3000:]
    days = odd.raw.mart("vobiz__channel_daily")
    assert all(row["date_day"] is not None for row in days)
    assert {str(row["date_day"]) for row in days} == {"2026-01-10", "2026-01-20"}


def test_campaign_rates_have_the_attempted_sends_as_denominator(odd):
    campaign = _one(odd.raw.mart("vobiz__campaign_performance"), campaign_id="cp-1")
    assert (campaign["attempted"], campaign["delivered"], campaign["failed"]) == (10, 1, 9)
    assert campaign["delivery_rate"] == pytest.approx(0.1)
    assert campaign["failure_rate"] == pytest.approx(0.9)
    assert campaign["read_rate"] == pytest.approx(0.0)


def test_a_failed_send_is_not_a_response(odd):
    conversation = _one(odd.raw.mart("vobiz__conversation_metrics"), conversation_id="cv-1")
    assert float(conversation["first_response_seconds"]) == 7200
    contact = _one(odd.raw.mart("vobiz__contacts"), contact_id=CONTACT)
    assert str(contact["last_outbound_at"]).startswith("2026-01-10 11:00:00")


def test_categories_and_statuses_outside_the_documented_ones_fall_in_an_other_bucket(odd):
    day = _one(odd.raw.mart("vobiz__channel_daily"), date_day="2026-01-10")
    assert day["billable_conversations"] == 4
    assert (day["billable_service_conversations"], day["billable_marketing_conversations"]) == (1, 1)
    assert day["billable_other_conversations"] == 2
    campaign = _one(odd.raw.mart("vobiz__campaign_performance"), campaign_id="cp-1")
    assert (campaign["recipients"], campaign["other_status"]) == (11, 1)


def test_a_template_language_in_metas_object_form_is_its_code(odd):
    message = _one(odd.raw.mart("vobiz__messages"), message_id="m-6")
    assert (message["template_name"], message["template_language"]) == ("promo", "en_US")


@ADAPTER_NEUTRAL
def test_rows_the_tap_re_read_long_after_their_day_reach_the_incremental_marts(warehouses):
    raw = warehouses("reread")
    raw.create(account())
    # The two incremental marts checked and what they read (the whole project builds on this
    # account in `odd`).
    select = ("--select", "+vobiz__channel_daily", "+vobiz__messages")
    assert raw.dbt("build", *select).returncode in {0, 1}  # main's build fails on the malformed row
    # The call answered and the reply read, re-read by a later run (as an upserting loader writes it).
    raw.sql(
        f"update vobiz.call_logs set duration_seconds = 300, answered_at = '2026-01-10 13:00:10', "  # noqa: S608
        f"status = 'completed', {RELOADED}",
        f"update vobiz.messages set status = 'read', {RELOADED} where id = 'm-3'",  # noqa: S608
        "select 1 as done",
    )
    raw.dbt("build", *select)

    day = _one(raw.mart("vobiz__channel_daily"), date_day="2026-01-10")
    assert (day["answered_calls"], day["call_seconds"]) == (1, 300)
    assert _one(raw.mart("vobiz__messages"), message_id="m-3")["status"] == "read"
    rebuilt = {name: raw.mart(name) for name in ("vobiz__channel_daily", "vobiz__messages")}
    assert raw.dbt("build", "--full-refresh", *select).returncode == 0
    for name, rows in rebuilt.items():
        key = "message_id" if name == "vobiz__messages" else "date_day"
        assert sorted(rows, key=lambda r: str(r[key])) == sorted(raw.mart(name), key=lambda r: str(r[key]))


@ADAPTER_NEUTRAL
def test_a_stream_left_unselected_builds_the_marts_without_it(warehouses):
    raw = warehouses("no_calls")
    tables = account()
    del tables["call_logs"]
    raw.create(tables)

    built = raw.dbt("build", dbt_vars={"vobiz_using_call_logs": False})

    assert built.returncode == 0, built.stdout[-3000:]
    day = _one(raw.mart("vobiz__channel_daily"), date_day="2026-01-10")
    assert day["calls"] is None and day["outbound_messages"] == 5
    assert _one(raw.mart("vobiz__contacts"), contact_id=CONTACT)["calls"] is None


def test_days_are_utc_days_whatever_the_sessions_time_zone(warehouses):
    raw = warehouses("kolkata", zoned=True)
    tables = account()
    # Only rows with a time (so the build does not depend on the malformed ones' fix).
    tables["messages"] = [m for m in tables["messages"] if m["created_at"]]
    tables["conversations"] = [c for c in tables["conversations"] if c["started_at"]]
    # 20:00 UTC is 01:30 the next day in Kolkata.
    tables["messages"].append(_message("m-8", "cv-1", "inbound", "read", "2026-01-10T20:00:00Z"))
    raw.create(tables)

    built = raw.dbt("build", timezone="Asia/Kolkata")

    assert built.returncode == 0, built.stdout[-3000:]
    days = raw.mart("vobiz__channel_daily")
    assert {str(row["date_day"]) for row in days} == {"2026-01-10", "2026-01-20"}
    assert _one(days, date_day="2026-01-10")["inbound_messages"] == 2
    assert str(_one(raw.mart("vobiz__messages"), message_id="m-8")["created_at"]).startswith(
        "2026-01-10 20:00:00"
    )


def test_template_performance_counts_campaign_and_conversation_sends_once_each(odd):
    day = _one(odd.raw.mart("vobiz__template_performance"), template_name="promo", date_day="2026-01-10")
    assert (day["template_id"], day["template_language"], day["template_category"]) == (
        "tp-1",
        "en_US",
        "marketing",
    )
    # m-6, and the recipients: r-9 delivered (m-9 is its send again), 9 failed, 1 expired.
    assert (day["sends"], day["sent"], day["delivered"], day["failed"], day["other_status"]) == (
        12,
        2,
        2,
        9,
        1,
    )
    assert day["failure_rate"] == pytest.approx(9 / 11)
    assert day["top_error_code"] == "131026"


def test_spend_prices_billable_units_by_the_rate_cards_market_and_category(odd):
    day = _one(odd.raw.mart("vobiz__channel_daily_spend"), date_day="2026-01-10")
    # +1 numbers: United States; service 0, marketing 0.025; marketing_lite and
    # authentication_international are not on the card.
    assert (day["billable_conversations"], day["priced_conversations"], day["unpriced_conversations"]) == (
        4,
        2,
        2,
    )
    assert float(day["estimated_spend"]) == pytest.approx(0.025)
    campaign = _one(odd.raw.mart("vobiz__campaign_spend"), campaign_id="cp-1")
    assert (campaign["delivered"], float(campaign["estimated_spend"])) == (1, pytest.approx(0.025))


def test_response_times_count_business_hours_in_their_time_zone(warehouses):
    raw = warehouses("business_hours")
    raw.create(account())
    # Saturday 2026-01-10: the reply took 09:00Z-11:00Z, 14:30-16:30 in Kolkata; open 15-16 on Saturdays.
    hours = {"days": [6], "start_hour": 15, "end_hour": 16, "time_zone": "Asia/Kolkata"}

    built = raw.dbt("build", "--select", "+vobiz__response_times", dbt_vars={"vobiz_business_hours": hours})

    assert built.returncode == 0, built.stdout[-3000:]
    conversation = _one(raw.mart("vobiz__response_times"), conversation_id="cv-1")
    assert float(conversation["first_response_seconds"]) == 7200
    assert float(conversation["first_response_business_seconds"]) == 3600
    assert str(conversation["first_response_within_window"]).lower() == "true"
    assert (conversation["customer_turns"], conversation["replied_turns"]) == (1, 1)


def test_tables_keyed_by_id_build_the_marts_of_appended_ones(warehouses, adapter):
    """target-postgres makes `id` the key and upserts on it: staging then reads PostgreSQL's rows
    without ranking them per id (vobiz_source_table), a row the loader retired still left out."""
    keyed, appended = warehouses("keyed"), warehouses("appended")
    for raw in (keyed, appended):
        raw.create(account(), keyed=raw is keyed)
        raw.sql(
            "update vobiz.canned_responses set _sdc_deleted_at = '2026-02-01 00:00:00'", "select 1 as done"
        )
        assert (build := raw.dbt("build")).returncode == 0, build.stdout[-3000:]

    compiled = keyed.dbt("compile", "--select", "stg_vobiz__contacts").stdout
    assert ("row_number()" in compiled) == (adapter == "duckdb"), compiled[-2000:]
    assert keyed.mart("stg_vobiz__canned_responses") == []
    marts = ("vobiz__messages", "vobiz__contacts", "vobiz__channel_daily", "vobiz__campaign_performance",
             "vobiz__template_performance", "vobiz__campaign_spend", "vobiz__response_times")  # fmt: skip
    for mart in marts:
        assert _rows(keyed.mart(mart)) == _rows(appended.mart(mart)), mart


def _rows(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


# The data tests that check a model's key and its rows' invariants in one node (primary_key and
# unique_combination with `expression`): each test's name, the table it reads, its key column
# (the first, for a combination) and an update that breaks one of its invariants.
KEY_AND_INVARIANTS = {
    "primary_key_stg_vobiz__messages_message_id":
        ("stg_vobiz__messages", "message_id", "direction = 'sideways'"),
    "primary_key_stg_vobiz__call_logs_call_id": ("stg_vobiz__call_logs", "call_id", "direction = 'sideways'"),
    "primary_key_stg_vobiz__campaign_recipients_recipient_id":
        ("stg_vobiz__campaign_recipients", "recipient_id", "campaign_id = null"),
    "primary_key_vobiz__messages_message_id": ("vobiz__messages", "message_id", "conversation_id = null"),
    "primary_key_vobiz__campaign_performance_campaign_id":
        ("vobiz__campaign_performance", "campaign_id", "recipients = recipients + 1"),
    "primary_key_vobiz__conversation_metrics_conversation_id":
        ("vobiz__conversation_metrics", "conversation_id", "messages = -1"),
    "unique_combination_vobiz__channel_daily_channel_id__date_day":
        ("vobiz__channel_daily", "channel_id", "messages = -1"),
    "unique_combination_vobiz__template_performance_channel_id__template_name__template_language__date_day":
        ("vobiz__template_performance", "channel_id", "sends = sends + 1"),
    "unique_combination_vobiz__channel_daily_spend_channel_id__date_day":
        ("vobiz__channel_daily_spend", "channel_id", "billable_conversations = billable_conversations + 1"),
    "unique_combination_int_vobiz__conversation_replies_conversation_id__turn":
        ("int_vobiz__conversation_replies", "conversation_id", "reply_seconds = 0"),
    "unique_combination_vobiz_rate_card_calling_code__category":
        ("vobiz_rate_card", "calling_code", "price = null"),
}  # fmt: skip


@ADAPTER_NEUTRAL
def test_a_key_test_with_invariants_fails_on_a_repeated_key_and_on_a_broken_invariant(warehouses):
    """One test node per model checks its key and its rows' invariants: a repeated key and a row
    breaking an invariant each count among its failures, as two separate tests' would."""
    raw = warehouses("guards")
    raw.create(account())
    assert (built := raw.dbt("build")).returncode == 0, built.stdout[-3000:]
    expected = {}
    for name, (table, key, breaking) in KEY_AND_INVARIANTS.items():
        relation = f"vobiz_analytics.{table}"
        last, first = (f"{key} = (select {end}({key}) from {relation})" for end in ("max", "min"))  # noqa: S608
        [repeated] = raw.sql(f"select count(*) as n from {relation} where {last}")  # noqa: S608
        [broken] = raw.sql(
            f"insert into {relation} select * from {relation} where {last}",  # noqa: S608
            f"update {relation} set {breaking} where {first}",  # noqa: S608
            f"select count(*) as n from {relation} where {first}",  # noqa: S608
        )
        # One failing row per repeated key, one per row breaking an invariant.
        expected[name] = int(repeated["n"]) + int(broken["n"])
    tested = raw.dbt("test", "--select", "test_type:generic")
    failures = dict(re.findall(r"Failure in test (\w+) \(.*?\n.*?Got (\d+) results?", tested.stdout))
    found = {
        name: int(count) for test, count in failures.items() for name in expected if test.startswith(name)
    }
    assert found == expected, tested.stdout[-3000:]
