"""Lists as the real API may serve them: every envelope shape and clock the docs allow (issue 18).

Each test runs the real CLI against the emulator serving one shape (`ListShape`) and asserts
the exact records, the bookmark and ACTIVATE_VERSION: sent only after a reading known complete.
"""

from __future__ import annotations

import math
import re

from tests.expected_output import assert_exact_sync, assert_tables_equal, upsert
from tests.tap_runner import emulator_config, requests_of, run_tap, tap_log
from vobiz_emulator.server import Handler, PendingChange

CONTACTS = ("contacts",)


def test_conversations_served_page_numbered_are_read_to_the_end(start_emulator, tmp_path):
    emulator = start_emulator(420, 4924, conversations_page_size=50, shape={"conversations": "pages"})

    run = run_tap(emulator_config(emulator), tmp_path)

    # Before: 50 conversations and 595 of 4,924 messages, exit 0, no warning.
    assert_exact_sync(run, emulator.state.dataset)
    assert len(run.records["conversations"]) == 420 and len(run.records["messages"]) == 4924
    # 9 pages of 50 (as the server pages it, whatever `limit` asked), and the last again (once every
    # page was answered), for each of the two streams.
    assert requests_of(emulator, "conversations") == 2 * (math.ceil(420 / 50) + 1)
    assert run.bookmark("conversations") and run.bookmark("messages")
    assert not tap_log(run.stderr, "WARNING")


def test_conversations_paged_by_has_more_alone_are_read_to_the_end(start_emulator, tmp_path):
    # `{"items", "has_more"}`: no page number, no limit, no total; the server pages 40 at a time.
    shape = {"conversations": "pages", "omit": ["page", "limit", "total"]}
    emulator = start_emulator(130, 1300, conversations_page_size=40, shape=shape)

    run = run_tap(emulator_config(emulator), tmp_path)

    assert_exact_sync(run, emulator.state.dataset)
    assert requests_of(emulator, "conversations") == 2 * math.ceil(130 / 40)
    assert run.bookmark("conversations") and run.bookmark("messages")


def test_an_envelope_without_has_more_or_total_is_followed_until_a_short_or_empty_page(
    start_emulator, tmp_path
):
    emulator = start_emulator(
        10,
        100,
        account={"contacts": 300, "canned_responses": 45},
        shape={"omit": ["has_more", "total"], "whole": []},
    )
    streams = ("contacts", "canned_responses")

    run = run_tap(emulator_config(emulator), tmp_path, streams=streams)

    # Before: 100 of 300 contacts and 20 of 45 canned responses, ACTIVATE_VERSION sent.
    assert_exact_sync(run, emulator.state.dataset, streams)
    assert requests_of(emulator, "contacts") == 4  # three full pages, then an empty one ends the list
    assert requests_of(emulator, "canned_responses") == 3  # 20, 20, then a short page of 5
    assert run.activated("contacts") and run.activated("canned_responses")
    assert run.bookmark("contacts")


def test_a_row_that_slips_within_the_second_the_reading_began_in_is_found(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 250})
    dataset = emulator.state.dataset
    doomed = dataset.account.contacts.rows[3]["id"]
    slipping = dataset.account.contacts.rows[100]["id"]  # moves up to page 1, already read
    # Between pages 1 and 2, in the second the reading began in: a page-1 row deleted, one created.
    spec = {"collection": "contacts", "delete_ids": [doomed], "create": 1, "same_second": True}
    emulator.state.pending_changes.append(PendingChange("contacts", 1, spec))

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    assert run.returncode == 0, run.stderr[-2000:]
    live = {row["id"] for row in dataset.account.contacts}
    emitted = set(run.ids("contacts"))
    # Before: not read again, `slipping` never emitted, ACTIVATE_VERSION sent anyway.
    assert slipping in emitted and live <= emitted and emitted - live == {doomed}
    assert re.search(r"/contacts: reading 2 found 1 rows no earlier reading saw", run.stderr)
    assert run.activated("contacts") and run.bookmark("contacts")


def test_a_row_stamped_in_the_future_does_not_unsettle_its_list(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 250, "templates_per_channel": 30})
    account = emulator.state.dataset.account
    account.contacts.rows[7]["updated_at"] = "2027-03-01T00:00:00Z"
    for templates in account.templates.values():
        templates.rows[0]["updated_at"] = "2027-03-01T00:00:00Z"
    streams = ("contacts", "templates")

    first = run_tap(emulator_config(emulator), tmp_path, streams=streams)
    second = run_tap(emulator_config(emulator), tmp_path, state=first.last_state, streams=streams)

    # Before: every run read each list three times, never wrote a bookmark, never sent ACTIVATE_VERSION.
    assert_exact_sync(first, emulator.state.dataset, streams)
    assert requests_of(emulator, "contacts") == 2 * (
        3 + 1
    )  # each run: one reading of 3 pages, the last again
    assert requests_of(emulator, "templates") == 2 * 3 * 2  # each run: 3 channels, 2 pages of 20 each
    assert first.activated("contacts") and first.activated("templates") and second.activated("templates")
    assert first.bookmark("contacts") and second.bookmark("contacts")
    assert "changed while it was read" not in first.stderr + second.stderr
    assert "4 rows stamped later than the API's clock" in first.stderr


def test_a_total_permanently_off_by_one_settles_on_the_second_reading(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape={"total_offset": 1})

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)
    rerun = run_tap(emulator_config(emulator), tmp_path, state=run.last_state, streams=CONTACTS)

    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert "250 rows were served for a total of 251" in run.stderr
    assert requests_of(emulator, "contacts") == 2 * 2 * (
        3 + 1
    )  # each run: two readings (3 pages, the last again)
    assert run.activated("contacts") and run.bookmark("contacts") and rerun.bookmark("contacts")
    assert "kept changing" not in run.stderr + rerun.stderr


def test_a_busy_list_whose_rows_are_only_updated_settles(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 1000})
    for after in range(1, 40, 2):  # a contact updated after every other request, none created or deleted
        emulator.state.pending_changes.append(
            PendingChange("contacts", after, {"collection": "contacts", "update": 1})
        )

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    # Before: three readings, no bookmark, no ACTIVATE_VERSION, every run.
    assert run.returncode == 0
    assert set(run.ids("contacts")) == {row["id"] for row in emulator.state.dataset.account.contacts}
    assert re.search(r"/contacts: reading 2 found 0 rows no earlier reading saw", run.stderr)
    assert "reading 3" not in run.stderr and "kept changing" not in run.stderr
    assert run.activated("contacts") and run.bookmark("contacts")
    # What changed after its page was read is newer than the bookmark: the next run brings it.
    emulator.state.pending_changes.clear()
    rerun = run_tap(emulator_config(emulator), tmp_path, state=run.last_state, streams=CONTACTS)
    assert_tables_equal(upsert(run, rerun, tables=CONTACTS), emulator.state.dataset, CONTACTS)


def test_a_page_size_that_changes_between_pages_is_re_planned(start_emulator, tmp_path):
    shape = {"limit_after": {"kind": "contacts", "requests": 1, "limit": 50}}
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape=shape)

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    # Before: 50 of 250 rows lost, with a warning, and the run went on.
    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    # Page 1 of 100, then pages 2 and 3 of 50 (rows 51-150, the first 50 again: not emitted twice),
    # then pages 4 and 5 for the rest.
    assert requests_of(emulator, "contacts") == 5
    assert run.activated("contacts") and run.bookmark("contacts")


def test_has_more_false_contradicted_by_total_reads_the_rest(start_emulator, tmp_path):
    emulator = start_emulator(
        10, 100, account={"contacts": 250}, shape={"has_more_false_on_first_page": True}
    )

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    # Before: 150 of 250 rows lost.
    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert requests_of(emulator, "contacts") == 3 + 1  # and the last page again
    assert run.activated("contacts")


def test_a_list_whose_pages_cannot_all_be_had_sends_no_activate_version(start_emulator, tmp_path):
    # Page 1 says there is no more and `total` says 250, but every later page comes back empty.
    emulator = start_emulator(
        10, 100, account={"contacts": 250}, shape={"has_more_false_on_first_page": True}
    )
    original = emulator.state.dataset.account.contacts.page

    def only_page_one(query, keep=None, **kwargs):
        page = original(query, keep, **kwargs)
        if page["page"] > 1:
            page["items"] = []
        return page

    emulator.state.dataset.account.contacts.page = only_page_one  # type: ignore[method-assign]

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    assert run.returncode == 0
    assert len(run.records["contacts"]) == 100
    # Three readings, each of page 1, the empty page 2 and the last page with rows again; page 3,
    # which `total` promises, too when a thread had asked for it before page 2 came back empty.
    assert 3 * 3 <= requests_of(emulator, "contacts") <= 3 * (3 + 1)
    assert not run.activated("contacts") and not run.bookmark("contacts")
    warnings = tap_log(run.stderr, "WARNING")
    assert len(warnings) == 1
    assert "100 rows were served for a total of 250" in warnings[0]
    assert "no ACTIVATE_VERSION is sent" in warnings[0]


def test_a_conversation_list_not_known_complete_moves_no_bookmark_of_either_stream(
    start_emulator, tmp_path, monkeypatch
):
    # Page-numbered conversations whose pages after the first come back empty, `total` saying 120.
    emulator = start_emulator(120, 1200, conversations_page_size=50, shape={"conversations": "pages"})
    served = Handler._conversations_page

    def first_page_only(handler, query):
        page = served(handler, query)
        if page["page"] > 1:
            page["items"] = []
        return page

    monkeypatch.setattr(Handler, "_conversations_page", first_page_only)
    state = {
        "bookmarks": {
            "conversations": {
                "replication_key": "started_at",
                "replication_key_value": "2026-10-20T00:00:00Z",
            },
            "messages": {"replication_key": "created_at", "replication_key_value": "2026-10-20T00:00:00Z"},
        }
    }

    run = run_tap(emulator_config(emulator), tmp_path, state=state)

    assert run.returncode == 0, run.stderr[-2000:]
    # Conversations on the pages not served were never read, nor their messages: both bookmarks stay.
    assert run.last_state["bookmarks"]["conversations"] == state["bookmarks"]["conversations"]
    assert run.last_state["bookmarks"]["messages"] == state["bookmarks"]["messages"]
    warnings = [w for w in tap_log(run.stderr, "WARNING") if "kept changing" in w]
    assert len(warnings) == 2  # one per stream
    assert all("50 rows were served for a total of 120" in w for w in warnings)


def test_the_log_tells_totals_in_the_order_they_were_seen(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 250})
    last_rows = [row["id"] for row in emulator.state.dataset.account.contacts.rows[-3:]]
    emulator.state.pending_changes.append(
        PendingChange("contacts", 1, {"collection": "contacts", "delete_ids": last_rows})
    )

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    # Before: "its total went from 247 to 250".
    assert "its total went from 250 to 247 while it was read" in run.stderr


def test_pages_answered_out_of_order_cannot_hide_a_slip(start_emulator, tmp_path):
    # Page 3 is answered before page 2; between the two answers a contact of page 1 is deleted and
    # one created: every total agrees, the rows served make the total, the created row is on no
    # page served, and the contact at page 2's boundary slips onto page 1, read already.
    shape = {"late_pages": {"contacts": {"page": 2, "seconds": 0.5}}}
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape=shape)
    contacts = emulator.state.dataset.account.contacts
    doomed, slipping = contacts.rows[3]["id"], contacts.rows[100]["id"]
    spec = {"collection": "contacts", "delete_ids": [doomed], "create": 1, "after_served": True}
    emulator.state.pending_changes.append(PendingChange("contacts", 1, spec))  # once pages 1 and 3 are out

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    # Before (issue 28, 7): `slipping` never emitted, ACTIVATE_VERSION sent (it would be soft-deleted)
    # and the bookmark moved past it.
    assert run.returncode == 0, run.stderr[-2000:]
    emitted = set(run.ids("contacts"))
    assert slipping in emitted and {row["id"] for row in contacts} <= emitted
    assert "its last page, asked for again after the others were answered" in run.stderr or (
        "rows were created or changed while it was read" in run.stderr
    )
    assert run.activated("contacts") and run.bookmark("contacts")
