"""The capture reader: complete lines only, per writer from its bookmark, a torn line skipped once."""

from __future__ import annotations

import logging

import fsspec
import pytest

from tap_vobiz.capture_reader import CaptureReader, Position, read_bookmark
from tap_vobiz.webhook_capture import CaptureWriter
from tests.webhook_capture_files import append

LOGGER = logging.getLogger("tap-vobiz.test")


def _read(root, positions=None, **options) -> tuple[list[bytes], CaptureReader]:
    reader = CaptureReader(str(root), positions or {}, LOGGER, **options)
    return [line for batch in reader.batches() for line in batch.lines], reader


@pytest.mark.parametrize("chunk_bytes", [3, 1 << 20])
def test_a_growing_segment_is_read_to_its_last_complete_line_then_on_from_there(tmp_path, chunk_bytes):
    append(tmp_path, "w1", 1, b'{"n":1}\n', b'{"n":2}\n', b'{"n":3,"half')

    first, reader = _read(tmp_path, chunk_bytes=chunk_bytes)

    assert first == [b'{"n":1}', b'{"n":2}']
    assert reader.positions == {"w1": Position(1, 16)}
    assert reader.torn_lines == 0
    append(tmp_path, "w1", 1, b'":true}\n', b'{"n":4}\n')
    second, reader = _read(tmp_path, reader.positions, chunk_bytes=chunk_bytes)
    assert second == [b'{"n":3,"half":true}', b'{"n":4}']
    assert reader.positions == {"w1": Position(1, 16 + 20 + 8)}


def test_a_torn_last_line_of_a_finished_segment_is_counted_skipped_and_logged_once(tmp_path, caplog):
    append(tmp_path, "w1", 1, b'{"n":1}\n', b'{"n":2,"cut')
    append(tmp_path, "w1", 2, b'{"n":3}\n')

    with caplog.at_level(logging.WARNING):
        lines, reader = _read(tmp_path)

    assert lines == [b'{"n":1}', b'{"n":3}']
    assert reader.torn_lines == 1
    assert reader.positions == {"w1": Position(2, 8)}
    assert [r.getMessage() for r in caplog.records] == [
        "Skipping an unfinished line at the end of the webhook capture's segment w1/000000000001 "
        "(11 bytes, never completed by its writer, so never acknowledged)"
    ]
    again, reader = _read(tmp_path, reader.positions)
    assert again == []
    assert reader.torn_lines == 0


def test_each_writer_is_read_from_its_own_position_and_a_new_writer_from_its_start(tmp_path):
    append(tmp_path, "w1", 1, b'{"w1":1}\n', b'{"w1":2}\n')
    append(tmp_path, "w1", 2, b'{"w1":3}\n')
    append(tmp_path, "w2", 1, b'{"w2":1}\n')
    _, reader = _read(tmp_path)
    kept = reader.positions
    assert kept == {"w1": Position(2, 9), "w2": Position(1, 9)}

    append(tmp_path, "w1", 2, b'{"w1":4}\n')
    append(tmp_path, "w1", 3, b'{"w1":5}\n')
    append(tmp_path, "w3-new", 1, b'{"w3":1}\n')
    lines, reader = _read(tmp_path, kept)

    assert lines == [b'{"w1":4}', b'{"w1":5}', b'{"w3":1}']
    assert reader.positions == {"w1": Position(3, 9), "w2": Position(1, 9), "w3-new": Position(1, 9)}


def test_segments_before_the_bookmarks_are_not_opened_and_stray_names_are_ignored(tmp_path):
    append(tmp_path, "w1", 1, b"not json at all, and never read again\n")
    append(tmp_path, "w1", 2, b'{"n":2}\n')
    (tmp_path / "segments" / "w1" / "000000000003.jsonl.tmp").write_bytes(b'{"n":"tmp"}\n')
    (tmp_path / "segments" / "not a writer").mkdir()

    lines, reader = _read(tmp_path, {"w1": Position(2, 0)})

    assert lines == [b'{"n":2}']
    assert reader.segments() == {"w1": [1, 2]}


def test_a_capture_not_written_yet_has_no_lines_and_says_so(tmp_path, caplog):
    lines, reader = _read(tmp_path / "not-yet")
    assert lines == []
    assert reader.positions == {}
    assert [record.getMessage() for record in caplog.records] == [
        f"The webhook capture {tmp_path / 'not-yet'} holds no segments yet: no receiver has written "
        "there (check webhook_capture if one should have)"
    ]


def test_an_fsspec_url_is_read_as_a_directory_is():
    fs = fsspec.filesystem("memory")
    fs.pipe("/capture-test/segments/w1/000000000001.jsonl", b'{"n":1}\n{"n":2}\n{"n"')
    fs.pipe("/capture-test/segments/w1/000000000002.jsonl", b'{"n":3}\n')
    try:
        reader = CaptureReader("memory://capture-test", {}, LOGGER)
        lines = [line for batch in reader.batches() for line in batch.lines]
    finally:
        fs.rm("/capture-test", recursive=True)
    assert lines == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert reader.torn_lines == 1
    assert reader.positions == {"w1": Position(2, 8)}


@pytest.mark.parametrize(
    ("value", "positions", "problems"),
    [
        (None, {}, 0),
        ({"w1": {"seq": 3, "offset": 10}}, {"w1": Position(3, 10)}, 0),
        ({"w1": {"seq": 0, "offset": 10}, "w2": {"seq": 2, "offset": 0}}, {"w2": Position(2, 0)}, 1),
        ({"w1": {"seq": "3", "offset": 10}}, {}, 1),
        ({"../w1": {"seq": 3, "offset": 10}}, {}, 1),
        ([1, 2], {}, 1),
    ],
)
def test_a_bookmark_keeps_its_valid_positions_and_names_the_others(value, positions, problems):
    found, wrong = read_bookmark(value)
    assert found == positions
    assert len(wrong) == problems


@pytest.mark.parametrize(
    "form", ["{tmp}/capture", "file://{tmp}/capture", "file://capture", "file://localhost{tmp}/c"]
)
def test_the_tap_reads_what_the_receiver_wrote_whatever_the_form_of_a_local_location(
    tmp_path, monkeypatch, form
):
    monkeypatch.chdir(tmp_path)  # relative forms resolve here
    location = form.format(tmp=tmp_path)
    writer = CaptureWriter(location, writer_id="w1")
    writer.submit(b'{"n":1}\n').result(timeout=10)
    writer.close()

    lines, _ = _read(location)

    assert lines == [b'{"n":1}']
