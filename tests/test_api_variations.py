"""Every answer the docs allow (issue 33): the emulator serves each variation, the tap is exact on it.

Each test runs the real CLI against the emulator serving one variation of `../shared/vobiz-api.md`
("older docs", "not documented", "may") and asserts the exact records, the bookmarks and
ACTIVATE_VERSION. Redirects and error texts quoting the token are in test_redirects_and_secrets.py;
lists served whole in test_stream_isolation.py.
"""

from __future__ import annotations

import pytest

from tests.expected_output import assert_exact_sync, assert_tables_equal, upsert
from tests.tap_runner import emulator_config, requests_of, run_tap, tap_log
from vobiz_emulator.server import Faults, PendingChange

CONTACTS = ("contacts",)


def test_the_older_docs_meta_envelope_is_read_to_the_end(start_emulator, tmp_path):
    # `{"items": [...50], "meta": {"total": 120, "page": 1}}`: no limit, no has_more.
    shape = {"conversations": "pages", "envelope": "meta"}
    emulator = start_emulator(120, 600, conversations_page_size=50, shape=shape)

    run = run_tap(emulator_config(emulator), tmp_path)

    # Before: 50 of 120 conversations, 218 of 600 messages, exit 0, no warning.
    assert_exact_sync(run, emulator.state.dataset)
    assert len(run.records["conversations"]) == 120 and len(run.records["messages"]) == 600
    assert requests_of(emulator, "conversations") == 2 * (3 + 1)  # 3 pages of 50 and the last again, twice
    assert run.bookmark("conversations") and run.bookmark("messages")
    assert not tap_log(run.stderr, "WARNING")


@pytest.mark.parametrize("strings", [False, True], ids=["numbers", "numbers as strings"])
def test_a_page_size_the_server_chose_without_saying_it_is_inferred(start_emulator, tmp_path, strings):
    # `{items, total, page}` (or with every value a string): 50 rows served when 100 were asked.
    shape = {
        "omit": ["limit", "has_more"],
        "limit_after": {"kind": "contacts", "requests": 0, "limit": 50},
        "strings": strings,
    }
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape=shape)

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    # Before: 150 of 250 contacts (over two runs) and a "kept changing" warning; with strings, 50.
    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert requests_of(emulator, "contacts") == 5 + 1  # 5 pages of 50, and the last again
    assert run.activated("contacts") and run.bookmark("contacts")
    assert not tap_log(run.stderr, "WARNING")


def test_envelope_values_as_strings_are_read_as_numbers_and_booleans(start_emulator, tmp_path):
    # `"total": "250", "page": "1", "limit": "50", "has_more": "true"`, contacts 50 a page.
    shape = {"strings": True, "limit_after": {"kind": "contacts", "requests": 0, "limit": 50}}
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape=shape)

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    # Before: 300,003 requests for 250 rows (pages 3 and 5 in turn up to the 100,000-page cap).
    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert requests_of(emulator, "contacts") == 5 + 1  # 5 pages of 50, and the last again
    assert run.activated("contacts")


def test_a_change_stamped_with_a_fraction_of_the_second_the_reading_began_in_is_seen(
    start_emulator, tmp_path
):
    emulator = start_emulator(10, 100, account={"contacts": 250})
    contacts = emulator.state.dataset.account.contacts
    doomed = contacts.rows[3]["id"]
    slipping = contacts.rows[100]["id"]  # moves up to page 1, already read
    # Between pages 1 and 2, in the second the reading began in, stamped `…:00.700Z`.
    spec = {
        "collection": "contacts",
        "delete_ids": [doomed],
        "create": 1,
        "same_second": True,
        "fraction_ms": 700,
    }
    emulator.state.pending_changes.append(PendingChange("contacts", 1, spec))

    run = run_tap(emulator_config(emulator, max_workers=1), tmp_path, streams=CONTACTS)

    # Before: the created row counted "later than the API's clock", the slip unseen, `slipping`
    # never emitted and soft-deleted by ACTIVATE_VERSION.
    assert run.returncode == 0, run.stderr[-2000:]
    live = {row["id"] for row in contacts}
    emitted = set(run.ids("contacts"))
    assert slipping in emitted and live <= emitted
    assert "rows stamped later than the API's clock" not in run.stderr
    assert "reading 2 found 1 rows no earlier reading saw" in run.stderr
    assert run.activated("contacts")


@pytest.mark.parametrize("workers", [1, 8])
def test_a_list_ordered_by_latest_update_loses_no_row_that_an_update_moves(start_emulator, tmp_path, workers):
    shape = {"order": {"contacts": "updated_first"}}
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape=shape)
    contacts = emulator.state.dataset.account.contacts
    by_update = sorted(contacts.rows, key=lambda row: (row["updated_at"], row["id"]), reverse=True)
    moved = by_update[180]["id"]  # on page 2, updated after page 1 was read: it moves to page 1
    spec = {"collection": "contacts", "update_ids": [moved]}
    emulator.state.pending_changes.append(PendingChange("contacts", 1, spec))

    run = run_tap(emulator_config(emulator, max_workers=workers), tmp_path, streams=CONTACTS)

    # Before: `moved` never emitted (ACTIVATE_VERSION soft-deleted it) and another row emitted twice.
    assert run.returncode == 0, run.stderr[-2000:]
    ids = run.ids("contacts")
    assert len(ids) == len(set(ids)), "a row emitted twice"
    assert set(ids) == {row["id"] for row in contacts}
    assert_tables_equal(upsert(run, tables=CONTACTS), emulator.state.dataset, CONTACTS)
    assert run.activated("contacts")


def test_a_lone_surrogate_is_replaced_and_counted_never_the_end_of_the_run(start_emulator, tmp_path):
    emulator = start_emulator(3, 60, days=1)
    conversation = emulator.state.dataset.conversations[0]
    cut = conversation.messages[-1]
    cut["content"] = '{"body": "Great news \ud83d"}'  # cut mid-emoji: valid JSON as `\ud83d`

    run = run_tap(emulator_config(emulator), tmp_path)

    # Before: UnicodeEncodeError, traceback, exit 1 at 25 of 60 messages, every rerun the same.
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    messages = {record["id"]: record for record in run.records["messages"]}
    assert len(messages) == 60
    assert messages[cut["id"]]["content"] == '{"body": "Great news \ufffd"}'
    assert "1 texts repaired (not UTF-8 as served)" in run.stderr


def test_a_body_that_is_not_utf_8_is_read_with_the_bad_bytes_replaced(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"canned_responses": 5}, shape={"encoding": "latin-1"})
    row = emulator.state.dataset.account.canned_responses.rows[0]
    row["content"] = "Merci, à bientôt"  # "à" as one ISO-8859-1 byte, not UTF-8

    run = run_tap(emulator_config(emulator), tmp_path, streams=("canned_responses",))

    assert run.returncode == 0, run.stderr[-2000:]
    emitted = {record["id"]: record for record in run.records["canned_responses"]}
    assert len(emitted) == 5 and emitted[row["id"]]["content"] == "Merci, \ufffd bient\ufffdt"
    assert "1 texts repaired (not UTF-8 as served)" in run.stderr
    assert run.activated("canned_responses")


@pytest.mark.parametrize("empty", ["null", "missing", "204"])
def test_an_empty_list_in_any_form_is_empty(start_emulator, tmp_path, empty):
    emulator = start_emulator(
        10, 100, account={"canned_responses": 0, "contacts": 30}, shape={"empty": empty}
    )
    streams = ("canned_responses", "contacts")

    run = run_tap(emulator_config(emulator, max_retry_seconds=5), tmp_path, streams=streams)

    # Before: retried for max_retry_seconds, then the whole run failed.
    assert_exact_sync(run, emulator.state.dataset, streams)
    assert requests_of(emulator, "canned_responses") == 1
    assert "Retrying" not in run.stderr
    assert run.activated("contacts")
    assert any(m["type"] == "ACTIVATE_VERSION" and m["stream"] == "canned_responses" for m in run.messages)


def test_what_already_held_keeps_holding_offsets_gzip_and_retry_after_zero(start_emulator, tmp_path):
    # Offsets other than Z (`+05:30`), and a 429 asking to retry at once: exact, as before.
    emulator = start_emulator(10, 100, account={"contacts": 120})
    row = emulator.state.dataset.account.contacts.rows[0]
    row["updated_at"] = "2026-10-01T17:30:00+05:30"
    emulator.state.faults.script = ["ok", "429"]
    emulator.state.faults.retry_after = "0"

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert run.activated("contacts")


# Found by review: envelope values sent but unreadable, pages past the end, endpoints too slow


@pytest.mark.parametrize(
    "values",
    [{"has_more": "yes"}, {"total": "²"}, {"total": -1}, {"total": "250.0"}, {"limit": 0}],
    ids=["has_more yes", "total superscript", "total -1", "total 250.0", "limit 0"],
)
def test_an_envelope_value_that_cannot_be_read_never_ends_a_list_early(start_emulator, tmp_path, values):
    # The server pages 50 at a time and says so only in the value it sends unreadably, or not at all.
    shape = {"omit": ["limit", "has_more"], "values": values}
    shape["limit_after"] = {"kind": "contacts", "requests": 0, "limit": 50}
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape=shape)

    run = run_tap(emulator_config(emulator, max_retry_seconds=3), tmp_path, streams=CONTACTS)

    # Before the review's fixes: 50 of 250 rows and ACTIVATE_VERSION (has_more "yes", total -1),
    # a traceback (total "²"), 100 of 250 (limit 0).
    assert_exact_sync(run, emulator.state.dataset, CONTACTS)
    assert "Traceback" not in run.stderr
    assert run.activated("contacts")


@pytest.mark.parametrize("empty", ["204", "null"])
def test_a_page_past_the_end_in_any_form_still_shows_a_row_slipped(start_emulator, tmp_path, empty):
    emulator = start_emulator(10, 100, account={"contacts": 101}, shape={"empty": empty})
    contacts = emulator.state.dataset.account.contacts
    spec = {"collection": "contacts", "delete_ids": [contacts.rows[5]["id"]]}
    emulator.state.pending_changes.append(PendingChange("contacts", 1, spec))

    run = run_tap(emulator_config(emulator, max_workers=1, max_retry_seconds=3), tmp_path, streams=CONTACTS)

    # Before: the 101st contact, moved onto page 1 already read, never emitted, exit 0 (204); the
    # stream failed after retrying a "malformed" page (null).
    assert run.returncode == 0, run.stderr[-2000:]
    assert {row["id"] for row in contacts} <= set(run.ids("contacts"))
    assert "reading 2 found 1 rows no earlier reading saw" in run.stderr


def test_more_rows_than_the_envelopes_limit_with_has_more_is_not_the_whole_list(start_emulator, tmp_path):
    # `limit` 25 echoed (the documented default) while 100 rows come a page, `has_more` true, no total.
    emulator = start_emulator(
        10, 100, account={"contacts": 250}, shape={"omit": ["total"], "values": {"limit": 25}}
    )

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    assert_exact_sync(run, emulator.state.dataset, CONTACTS)


def test_a_total_far_larger_than_the_list_does_not_ask_for_every_page_it_promises(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"contacts": 250}, shape={"total_offset": 20_000})

    run = run_tap(emulator_config(emulator), tmp_path, streams=CONTACTS)

    # Before: 609 requests (every page of the 20,250 promised, in three readings).
    assert run.returncode == 0
    assert requests_of(emulator, "contacts") <= 3 * (
        3 + 1 + 2 * 8
    )  # per reading: the pages, one empty, the look-ahead
    assert not run.activated("contacts")
    assert "250 rows were served for a total of 20250" in run.stderr


def test_an_endpoint_too_slow_to_answer_ends_its_stream_once_the_api_has_answered(start_emulator, tmp_path):
    emulator = start_emulator(10, 100, account={"templates_per_channel": 5})
    emulator.state.faults = Faults(endpoints={"contacts": "slow:3"})
    streams = ("channels", "contacts", "templates")

    run = run_tap(
        emulator_config(emulator, request_timeout=1, max_retry_seconds=3), tmp_path, streams=streams
    )

    # Before: "no answer at all" ended the run; the streams after contacts were never read.
    assert run.returncode == 1
    errors = tap_log(run.stderr, "ERROR")
    assert len(errors) == 1 and errors[0].startswith("contacts not read whole: Gave up after retrying"), (
        errors
    )
    read = ("channels", "templates")
    assert_tables_equal(upsert(run, tables=read), emulator.state.dataset, read)


def test_every_child_list_answering_404_is_a_missing_endpoint_not_deleted_parents(start_emulator, tmp_path):
    emulator = start_emulator(10, 100)
    emulator.state.faults = Faults(endpoints={"templates": "404"})

    run = run_tap(emulator_config(emulator), tmp_path, streams=("channels", "templates"))

    # Before: three "Skipping channel" warnings, exit 0, and ACTIVATE_VERSION for an empty templates
    # table: every template in the warehouse soft-deleted.
    assert run.returncode == 1
    assert not any(m["type"] == "ACTIVATE_VERSION" and m["stream"] == "templates" for m in run.messages)
    errors = tap_log(run.stderr, "ERROR")
    assert len(errors) == 1 and "all 3 channels' templates lists answered 404" in errors[0]
    assert run.activated("channels")
