"""The capture writer (`tap_vobiz.webhook_capture`): the contract's layout, lines and durability rules."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import typing as t
from concurrent.futures import Future
from pathlib import Path

import fsspec
import pytest

from tap_vobiz.webhook_capture import CaptureWriter, ObjectSegments, delivery_line, segment_name

RECEIVED = dt.datetime(2026, 12, 3, 6, 14, 35, 123456, tzinfo=dt.timezone.utc)


def line(number: int) -> bytes:
    body = json.dumps({"event_id": f"e{number}", "payload": {"n": number}}).encode()
    return delivery_line([("X-Webhook-Event", "message.status")], body, RECEIVED)


def test_a_delivery_line_holds_the_raw_body_and_every_header_lower_cased() -> None:
    body = b'{"event_id": "e1",\n "text": "Gr\xc3\xbc\xc3\x9fe \xf0\x9f\x98\x9f"}'
    headers = [("X-Webhook-Signature", "AB12"), ("Accept", "a"), ("accept", "b")]
    written = delivery_line(headers, body, RECEIVED)
    assert written.endswith(b"\n") and written.count(b"\n") == 1
    assert json.loads(written) == {
        "v": 1,
        "received_at": "2026-12-03T06:14:35.123456Z",
        "headers": {"x-webhook-signature": "AB12", "accept": "a, b"},
        "body": body.decode(),
    }


def test_concurrent_lines_all_land_in_the_first_segment_once_acknowledged(tmp_path: Path) -> None:
    writer = CaptureWriter(str(tmp_path), writer_id="w1")
    futures: list[Future[None]] = []
    lock = threading.Lock()

    def submit(start: int) -> None:
        for number in range(start, start + 250):
            future = writer.submit(line(number))
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=submit, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for future in futures:
        future.result(timeout=30)
    # Acknowledged: on disk before close.
    segment = tmp_path / "segments" / "w1" / "000000000001.jsonl"
    lines = segment.read_text().splitlines()
    ids = sorted(json.loads(json.loads(text)["body"])["event_id"] for text in lines)
    assert ids == sorted(f"e{n * 1000 + i}" for n in range(4) for i in range(250))
    assert writer.lines == 1000 and writer.flushes <= 1000
    writer.close()


def test_segments_rotate_at_the_size_limit_numbered_from_one(tmp_path: Path) -> None:
    size = len(line(1))
    writer = CaptureWriter(str(tmp_path), writer_id="w1", segment_bytes=size * 3)
    for number in range(10):
        writer.submit(line(number)).result(timeout=10)
    writer.close()
    names = sorted(path.name for path in (tmp_path / "segments" / "w1").iterdir())
    assert (
        names
        == [segment_name(seq) for seq in range(1, 5)]
        == [
            "000000000001.jsonl",
            "000000000002.jsonl",
            "000000000003.jsonl",
            "000000000004.jsonl",
        ]
    )
    counts = [len((tmp_path / "segments" / "w1" / name).read_bytes().splitlines()) for name in names]
    assert counts == [3, 3, 3, 1]


def test_a_failed_write_fails_its_lines_and_the_next_go_to_a_successor_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = CaptureWriter(str(tmp_path), writer_id="w1")
    writer.submit(line(1)).result(timeout=10)
    real_write = os.write

    def torn_write(fd: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", real_write)
        real_write(fd, bytes(data)[:7])  # half a line reached the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", torn_write)
    with pytest.raises(OSError, match="No space"):
        writer.submit(line(2)).result(timeout=10)
    writer.submit(line(3)).result(timeout=10)
    writer.close()
    first, second = (tmp_path / "segments" / "w1" / segment_name(seq) for seq in (1, 2))
    assert first.read_bytes() == line(1) + line(2)[:7]  # the torn end, final: its successor exists
    assert second.read_bytes() == line(3)


def test_an_object_store_gets_one_immutable_object_per_flush() -> None:
    location = "memory://capture-test/prefix"
    writer = CaptureWriter(location, writer_id="w1")
    for number in range(3):
        writer.submit(line(number)).result(timeout=10)
    writer.close()
    fs = fsspec.filesystem("memory")
    names = sorted(fs.ls("/capture-test/prefix/segments/w1", detail=False))
    assert [name.rsplit("/", 1)[1] for name in names] == [segment_name(seq) for seq in (1, 2, 3)]
    assert [fs.cat_file(name) for name in names] == [line(0), line(1), line(2)]
    fs.rm("/capture-test", recursive=True)


def test_a_writer_id_outside_the_contract_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        CaptureWriter(str(tmp_path), writer_id="a/b")


def test_a_write_refused_before_any_byte_keeps_the_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk refuses the whole write: nothing torn, so no new segment per failed flush."""
    writer = CaptureWriter(str(tmp_path), writer_id="w1")
    writer.submit(line(1)).result(timeout=10)
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", real_write)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        writer.submit(line(2)).result(timeout=10)
    writer.submit(line(3)).result(timeout=10)
    writer.close()
    assert [path.name for path in (tmp_path / "segments" / "w1").iterdir()] == [segment_name(1)]
    assert (tmp_path / "segments" / "w1" / segment_name(1)).read_bytes() == line(1) + line(3)


class LatePuts:
    """An object store whose first PUT times out and lands later, once the next one has."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.late: tuple[str, bytes] | None = None

    def pipe_file(self, path: str, data: bytes) -> None:
        if self.late is None:
            self.late = (path, data)
            raise TimeoutError("the store did not answer")
        self.objects[path] = data

    def land(self) -> None:
        path, data = t.cast(tuple[str, bytes], self.late)
        self.objects[path] = data


def test_a_put_that_times_out_and_lands_later_never_replaces_an_acknowledged_object() -> None:
    writer = CaptureWriter("memory://capture-put-test", writer_id="w1")
    store = t.cast(ObjectSegments, writer.store)
    puts = LatePuts()
    store.fs = puts  # type: ignore[assignment]
    with pytest.raises(TimeoutError):
        writer.submit(line(1)).result(timeout=10)  # answered 503: Vobiz delivers it again
    writer.submit(line(2)).result(timeout=10)  # acknowledged
    writer.close()
    puts.land()
    names = {path.rsplit("/", 1)[1]: data for path, data in puts.objects.items()}
    assert names == {segment_name(1): line(1), segment_name(2): line(2)}


class HeldWrites:
    """A store whose writes wait until `release` is set: lines queue up behind the first flush."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.started.set()
        self.release.wait(10)
        self.written.append(data)

    def close(self) -> None:
        pass


def test_a_line_whose_request_was_cancelled_is_written_and_the_writer_goes_on() -> None:
    # uvicorn cancels the requests still running at its shutdown deadline: the future of a queued line
    # is cancelled with them.
    writer = CaptureWriter("memory://capture-cancel-test", writer_id="w1")
    store = HeldWrites()
    writer.store = store
    first = writer.submit(line(1))
    assert store.started.wait(10)
    cancelled = writer.submit(line(2))
    after = writer.submit(line(3))
    assert cancelled.cancel()
    store.release.set()
    first.result(timeout=10)
    after.result(timeout=10)
    writer.submit(line(4)).result(timeout=10)
    writer.close()
    assert b"".join(store.written) == line(1) + line(2) + line(3) + line(4)
