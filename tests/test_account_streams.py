"""Channels, templates, contacts, canned responses: page-numbered lists read whole, fast and exactly."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from tap_vobiz.decoding import parse_timestamp
from tests.expected_output import (
    ACCOUNT_TABLES,
    as_emitted,
    assert_exact_sync,
    assert_tables_equal,
    expected_tables,
    upsert,
)
from tests.tap_runner import TapRun, emulator_config, run_tap, tap_log
from vobiz_emulator.account_data import rfc3339
from vobiz_emulator.server import Faults, PendingChange

CONTACTS = ("contacts",)


def _requests(emulator, kind: str) -> int:
    return emulator.state.stats[f"requests:{kind}"]


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def _stream_messages(run: TapRun, stream: str) -> list[dict]:
    return [m for m in run.messages if m.get("stream") == stream and m["type"] != "SCHEMA"]


def _delete_after(emulator, requests: int, collection: str, ids: list[str], **more: object) -> None:
    """While the run pages: delete `ids` (and `more`, e.g. create=3) once `requests` requests were served."""
    spec = {"collection": collection, "delete_ids": ids, **more}
    emulator.state.pending_changes.append(PendingChange(collection, requests, spec))


# Full sync


def test_full_sync_of_channels_templates_contacts_and_canned_responses_equals_the_emulator(
    start_emulator, tmp_path
):
    emulator = start_emulator(
        20, 300, account={"contacts": 1234, "templates_per_channel": 45, "canned_responses": 33}
    )
    dataset = emulator.state.dataset

    run = run_tap(emulator_config(emulator), tmp_path, streams=ACCOUNT_TABLES)

    assert_exact_sync(run, dataset, ACCOUNT_TABLES)
    # The documented gaps arrive as nulls; empty strings stay empty strings.
    contacts = {r["id"]: r for r in run.records["contacts"]}
    never_active = [c["id"] for c in dataset.account.contacts if "last_active_at" not in c]
    assert never_active and all(contacts[i].get("last_active_at") is None for i in never_active)
    assert "" in {r["business_profile"] for r in run.records["channels"]}
    # Every list once, pages by what the envelope says: templates are served 20 at a time whatever
    # `limit` asks, canned responses whole (in an envelope saying `limit` 20), contacts 100 a page.
    assert _requests(emulator, "contacts") == math.ceil(1234 / 100) + 1  # the last page again, at the end
    assert _requests(emulator, "templates") == 3 * (math.ceil(45 / 20) + 1)
    assert _requests(emulator, "canned_responses") == 1
    assert _requests(emulator, "channels") == 2  # the channels stream, and templates' list of channels
    assert all("limit=100" in path for path in emulator.state.requests)
    # Each full-table stream (and contacts without state) ends with ACTIVATE_VERSION, after its
    # records, which carry that version.
    for stream in ACCOUNT_TABLES:
        messages = [m for m in _stream_messages(run, stream) if m["type"] != "STATE"]
        assert messages[-1]["type"] == "ACTIVATE_VERSION", stream
        assert {m["version"] for m in messages} == {messages[-1]["version"]}, stream
    assert "Records: 33 canned_responses, 3 channels, 1,234 contacts" in run.stderr


def test_a_server_page_smaller_than_the_one_asked_for_is_followed(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 500, "contacts_max_limit": 30})

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert _requests(emulator, "contacts") == math.ceil(500 / 30) + 1
    assert "changed while it was read" not in run.stderr


def test_pages_are_fetched_at_once_and_emitted_in_the_order_one_worker_emits_them(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 4000, "templates_per_channel": 70})
    # 60 ms a request: long enough that 6 workers are all in flight however busy the machine is
    # (at 20 ms, a suite run beside another job once saw 5).
    emulator.state.faults = Faults(latency_ms=60)

    sequential = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=ACCOUNT_TABLES)
    assert emulator.state.stats["max_in_flight"] == 1
    emulator.state.stats.clear()
    concurrent = run_tap(emulator_config(emulator, max_workers=6), tmp_path, streams=ACCOUNT_TABLES)

    assert_exact_sync(concurrent, emulator.state.dataset, ACCOUNT_TABLES)
    for stream in ACCOUNT_TABLES:
        assert concurrent.ids(stream) == sequential.ids(stream), stream
    assert concurrent.states == sequential.states
    # Pages of one list, and lists of several channels, were in flight together; never more
    # than max_workers, however the fetches nest.
    assert emulator.state.stats["max_in_flight"] == 6


# Reruns


def test_rerun_brings_created_and_updated_rows_and_full_table_deletions(start_emulator, tmp_path):
    emulator = start_emulator(20, 300, account={"contacts": 800})
    dataset = emulator.state.dataset
    first = run_tap(emulator_config(emulator), tmp_path, streams=ACCOUNT_TABLES)
    assert_exact_sync(first, dataset, ACCOUNT_TABLES)

    dataset.add_activity(hours=6)
    changes = {
        collection: dataset.account.change(
            collection, create=2, update=0 if collection == "canned_responses" else 3, delete=2
        )
        for collection in ACCOUNT_TABLES
    }
    emulator.state.stats.clear()
    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=ACCOUNT_TABLES)

    assert second.returncode == 0, second.stderr[-2000:]
    tables = upsert(first, second, tables=ACCOUNT_TABLES)
    # Channels, templates, canned responses: read whole, deletions applied by ACTIVATE_VERSION.
    assert_tables_equal(tables, dataset, ("channels", "templates", "canned_responses"))
    # Contacts: the rerun emits exactly those changed since bookmark - lookback_hours (72) ...
    bookmark = parse_timestamp(first.last_state["bookmarks"]["contacts"]["replication_key_value"])
    assert bookmark is not None
    horizon = rfc3339(bookmark - dt.timedelta(hours=72))
    assert sorted(second.ids("contacts")) == sorted(
        c["id"] for c in dataset.account.contacts if c["updated_at"] >= horizon
    )
    assert set(changes["contacts"]["created"]) | set(changes["contacts"]["updated"]) <= set(
        second.ids("contacts")
    )
    assert not any(m["type"] == "ACTIVATE_VERSION" for m in _stream_messages(second, "contacts"))
    # ... and a deleted contact stays in the warehouse until a full refresh,
    expected = expected_tables(dataset, CONTACTS)["contacts"]
    assert tables["contacts"].keys() - expected.keys() == set(changes["contacts"]["deleted"])
    for contact_id, row in expected.items():
        assert {k: tables["contacts"][contact_id].get(k) for k in row} == row
    # which sends ACTIVATE_VERSION and removes it.
    refresh = run_tap(emulator_config(emulator), tmp_path, streams=ACCOUNT_TABLES)
    assert_tables_equal(upsert(first, second, refresh, tables=ACCOUNT_TABLES), dataset, ACCOUNT_TABLES)
    state = second.last_state["bookmarks"]["contacts"]
    assert len(str(second.last_state)) < 1000 and set(state) == {"replication_key", "replication_key_value"}


def test_activate_version_can_be_turned_off(start_emulator, tmp_path):
    emulator = start_emulator(10, 100)

    run = run_tap(
        emulator_config(emulator, emit_activate_version_messages=False), tmp_path, streams=ACCOUNT_TABLES
    )

    assert_exact_sync(run, emulator.state.dataset, ACCOUNT_TABLES)
    assert not [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    assert all("version" not in m for m in run.messages if m["type"] == "RECORD")


# Lists that move while they are read


@pytest.mark.parametrize("workers", [1, 8])
def test_contacts_deleted_while_a_full_sync_pages_make_no_row_slip_through(start_emulator, tmp_path, workers):
    emulator = start_emulator(10, 100, account={"contacts": 2000})
    emulator.state.faults = Faults(latency_ms=2)
    dataset = emulator.state.dataset
    first_page = [row["id"] for row in list(dataset.account.contacts)[:5]]
    # Once pages 1 and 2 are served: 5 rows of page 1 go, every later row moves 5 places up.
    _delete_after(emulator, 2, "contacts", first_page, create=3)

    run = run_tap(emulator_config(emulator, max_workers=workers), tmp_path, streams=CONTACTS)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "changed while it was read" in run.stderr
    emitted, current = set(run.ids("contacts")), {row["id"] for row in dataset.account.contacts}
    assert current <= emitted  # nothing slipped through
    assert emitted - current <= set(first_page)  # emitted before they were deleted
    if workers == 1:
        # The first reading missed exactly the 5 rows that moved up across the page 2 | 3 boundary.
        assert re.search(r"/contacts: reading 2 found 5 rows no earlier reading saw", run.stderr)
    # A quiet rerun changes nothing; the deleted rows wait for the next full refresh.
    rerun = run_tap(emulator_config(emulator), tmp_path, state=run.last_state, streams=CONTACTS)
    tables = upsert(run, rerun, tables=CONTACTS)
    assert current <= tables["contacts"].keys() and "changed while it was read" not in rerun.stderr
    for row in dataset.account.contacts:
        assert {k: tables["contacts"][row["id"]].get(k) for k in as_emitted("contacts", row)} == as_emitted(
            "contacts", row
        )


def test_contacts_changed_since_the_last_run_are_not_lost_when_rows_shift_during_the_rerun(
    start_emulator, tmp_path
):
    emulator = start_emulator(10, 100, account={"contacts": 1000})
    dataset = emulator.state.dataset
    first = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)
    dataset.add_activity(hours=1)
    # Contacts changed between the runs, on both sides of the page 1 | 2 boundary ...
    rows = list(dataset.account.contacts)
    changed = rows[95:110]
    for row in changed:
        row["name"], row["updated_at"] = "Changed Since", rfc3339(dataset.now)
    # ... then, once page 1 of the rerun is served, 5 rows of page 1 are deleted.
    _delete_after(emulator, 1, "contacts", [row["id"] for row in rows[:5]])

    second = run_tap(
        emulator_config(emulator, max_workers=1), tmp_path, state=first.last_state, streams=CONTACTS
    )

    assert second.returncode == 0
    emitted = {r["id"]: r for r in second.records["contacts"]}
    assert {row["id"] for row in changed} <= emitted.keys()
    assert all(emitted[row["id"]]["name"] == "Changed Since" for row in changed)
    # Rows 101-105 moved up into page 1, already read: the second reading found them.
    assert re.search(r"/contacts: reading 2 found 5 rows no earlier reading saw", second.stderr)


def test_a_list_that_moves_during_every_reading_keeps_its_bookmark_and_table_version(
    start_emulator, tmp_path
):
    emulator = start_emulator(10, 100, account={"contacts": 300})
    first = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)
    for after in range(0, 40, 2):  # a contact created after every other request of the rerun
        emulator.state.pending_changes.append(
            PendingChange("contacts", after, {"collection": "contacts", "create": 1})
        )

    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=CONTACTS)
    refresh = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    assert second.returncode == 0
    assert "kept changing through 3 readings" in second.stderr
    assert "3 lists read again (changed while read)" in second.stderr
    assert second.last_state["bookmarks"]["contacts"] == first.last_state["bookmarks"]["contacts"]
    # Read without state it would send ACTIVATE_VERSION: not while the list is unsettled.
    assert "kept changing" in refresh.stderr
    assert not [m for m in refresh.messages if m["type"] == "ACTIVATE_VERSION"]


# Faults and bad input


def test_templates_of_a_channel_deleted_mid_run_are_skipped_and_counted(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"templates_per_channel": 30})
    dataset = emulator.state.dataset
    doomed = list(dataset.account.channels)[2]["id"]
    spec = {"collection": "channels", "delete_ids": [doomed]}
    emulator.state.pending_changes.append(PendingChange("templates", 1, spec))

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=("templates",))

    assert run.returncode == 0
    assert f"Skipping channel {doomed}: 404" in run.stderr
    assert "1 channels skipped (404)" in run.stderr
    assert not run.records["channels"]
    assert_exact_sync(run, dataset, ("templates",))  # the deleted channel's templates went with it


def test_rows_without_an_id_or_with_malformed_fields_are_counted_and_set_aside(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 60})
    contacts = emulator.state.dataset.account.contacts.rows
    no_id = dict(contacts[0])
    del no_id["id"]
    contacts.insert(1, no_id)
    contacts[5]["updated_at"] = "yesterday"
    contacts[6]["tags"] = "vip"
    contacts[7]["tags"] = ["vip", 7]
    contacts[8]["custom_attributes"] = ["not", "an", "object"]

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    assert run.returncode == 0
    by_id = {r["id"]: r for r in run.records["contacts"]}
    assert len(by_id) == 60
    assert by_id[contacts[5]["id"]]["malformed_fields"] == {"updated_at": "yesterday"}
    assert by_id[contacts[5]["id"]]["updated_at"] is None
    assert by_id[contacts[6]["id"]]["malformed_fields"] == {"tags": "vip"}
    assert by_id[contacts[7]["id"]]["malformed_fields"] == {"tags": ["vip", 7]}
    assert by_id[contacts[8]["id"]]["malformed_fields"] == {"custom_attributes": ["not", "an", "object"]}
    assert {
        "1 records dropped without an id: not loaded (a row without an id cannot be upserted); each was "
        "logged above",
        "4 malformed fields set aside: kept as received in the record's malformed_fields, the field null; "
        "nothing lost",
    } <= set(tap_log(run.stderr, "INFO"))


def test_a_list_that_serves_the_same_page_again_is_incomplete_with_one_warning(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 500})
    emulator.state.faults = Faults(script=["ok", "loop"])

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    # Before issue 27: exit 1, every other stream of the run ended with it.
    assert run.returncode == 0
    warnings = tap_log(run.stderr, "WARNING")
    assert len(warnings) == 1, warnings
    assert re.search(
        r"\S+/contacts could not be read whole: Vobiz served page 1 when asked for page 2", warnings[0]
    )
    assert "of a total of 500" in warnings[0]
    assert "replication_key_value" not in run.last_state["bookmarks"].get("contacts", {})
    assert not any(m["type"] == "ACTIVATE_VERSION" for m in run.messages)
    assert len(run.ids("contacts")) == len(set(run.ids("contacts"))) == 100
    assert "Traceback" not in run.stderr


def test_items_that_are_not_objects_or_have_object_ids_do_not_unsettle_a_list(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 250})
    contacts = emulator.state.dataset.account.contacts.rows
    contacts[3] = "not an object"  # type: ignore[call-overload]
    contacts[150]["id"] = {"not": "a string"}

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    assert run.returncode == 0
    assert len(run.records["contacts"]) == 248
    assert "changed while it was read" not in run.stderr
    assert "2 records dropped without an id" in run.stderr
    assert run.last_state["bookmarks"]["contacts"]["replication_key_value"]
