"""The webhook capture: where the receiver writes each verified delivery before acknowledging it.

The format is a contract between the receiver (which writes it, here) and the tap's webhook
streams (which read it). Under a LOCATION, a local directory or an fsspec URL
(`s3://bucket/prefix`, `memory://...`):

    segments/<writer_id>/<seq>.jsonl

- `writer_id` (`[A-Za-z0-9_-]+`) is unique per receiver process (`<host>-<pid>-<8 hex>`), so
  several receivers write to one LOCATION without ever clashing or taking a lock.
- `seq` is 12 zero-padded decimal digits, from `000000000001`, one more per new segment of
  that writer.
- In a local directory, lines are appended to the current segment and fsynced (the file, and
  the directory when a file is created) before any event in them is acknowledged; requests
  arriving together share one fsync (group commit). The writer moves to `seq + 1` at a size
  limit (64 MiB), or after a write that failed part-way; a segment is never appended to once
  its successor exists. An object store cannot append: each flush is one new, immutable object
  `seq + 1` holding that batch's lines, written completely before any of them is acknowledged.
  After a failed PUT that number is skipped, never reused: a PUT that timed out may still land
  later, and would replace the next batch's object, acknowledged by then. So an object store's
  numbers may have gaps (a reader takes the numbers it finds, in order).
- Each line is one delivery, a JSON object terminated by `\\n`:
  `{"v": 1, "received_at": "2026-12-03T06:14:35.123456Z", "headers": {<lower-cased name>: <value>},
  "body": "<the raw request body decoded as UTF-8>"}`, every header as received (repeated ones
  joined by `, `). Only verified deliveries are written.
- A reader treats bytes after a segment's last `\\n` as not yet written, and tolerates a torn
  line only at the very end of a segment whose successor exists (a write that failed, or a
  process killed mid-write). Its bookmark is `{"writers": {<writer_id>: {"seq", "offset"}}}`.

Why a thread of its own: the receiver's event loop must not block on a disk or an object
store, and one writer draining a queue is what makes a group commit: every line queued while
the previous flush ran goes out in the next one, behind one fsync or one PUT.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import secrets
import socket
import threading
import time
import typing as t
from concurrent.futures import Future
from pathlib import Path
from urllib.parse import urlsplit

import fsspec

FORMAT_VERSION = 1
SEGMENTS = "segments"
SEGMENT_BYTES = 64 * 1024 * 1024
# The most one flush carries: a backlog goes out in several objects or writes, not one huge one.
FLUSH_BYTES = 8 * 1024 * 1024
WRITER_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def segment_name(seq: int) -> str:
    """A segment's file name: `000000000001.jsonl`."""
    return f"{seq:012d}.jsonl"


def new_writer_id() -> str:
    """A writer id unique to this process: `<host>-<pid>-<8 random hex>`."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def delivery_line(headers: t.Iterable[tuple[str, str]], body: bytes, received_at: dt.datetime) -> bytes:
    """One delivery as a capture line: the headers as received, the body as UTF-8 text, `\\n`-ended.

    Raises UnicodeDecodeError for a body that is not UTF-8 (a JSON body always is).
    """
    named: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        named[key] = f"{named[key]}, {value}" if key in named else value
    record = {
        "v": FORMAT_VERSION,
        "received_at": received_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "headers": named,
        "body": body.decode("utf-8"),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class SegmentStore(t.Protocol):
    """Where a writer's flushes go: `write` returns once the bytes are on stable storage."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class LocalSegments:
    """A writer's segments in a local directory: appended, fsynced, rotated at `segment_bytes`."""

    def __init__(self, root: Path, writer_id: str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = root / SEGMENTS / writer_id
        self.segment_bytes = segment_bytes
        self.seq = 0
        self.size = 0
        self._fd: int | None = None
        for directory in (root, root / SEGMENTS, self.directory):
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                _fsync_directory(directory.parent)

    def write(self, data: bytes) -> None:
        if self._fd is None or (self.size and self.size + len(data) > self.segment_bytes):
            self._next_segment()
        fd = t.cast(int, self._fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            _sync_data(fd)
        except OSError:
            if _size(fd) != self.size:
                # The segment may end in a torn line now: never append to it again (its
                # successor is what tells a reader the torn end is final).
                self.close()
            raise  # (nothing of it reached the file, e.g. a full disk: the segment goes on)
        self.size += len(data)

    def _next_segment(self) -> None:
        self.close()
        path = self.directory / segment_name(self.seq + 1)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.seq += 1  # only once the file exists: the numbers have no gaps
        self.size = 0
        _fsync_directory(self.directory)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class ObjectSegments:
    """A writer's segments in an object store (fsspec): one new immutable object per flush."""

    def __init__(self, location: str, writer_id: str) -> None:

        self.fs, root = fsspec.core.url_to_fs(location)
        self.directory = f"{root.rstrip('/')}/{SEGMENTS}/{writer_id}"
        self.seq = 0

    def write(self, data: bytes) -> None:
        self.seq += 1  # used up whatever the PUT's outcome (the class docstring says why)
        self.fs.pipe_file(f"{self.directory}/{segment_name(self.seq)}", data)

    def close(self) -> None:
        """Nothing held open: every object was complete when written."""


def is_local(location: str) -> bool:
    """Whether LOCATION is a local directory (a path, or a `file://` URL) rather than an fsspec URL."""
    return urlsplit(location).scheme in {"", "file"} or bool(re.match(r"^[A-Za-z]:[\\/]", location))


def location_secrets(location: str) -> tuple[str, ...]:
    """What of a LOCATION no message may show: the password of a URL's user (`sftp://u:pw@host/x`)."""
    try:
        password = urlsplit(location).password
    except ValueError:
        return ()
    return (password,) if password else ()


def local_path(location: str) -> Path:
    """The directory of a local LOCATION, as the tap's reader (fsspec) resolves the same string:
    `file://cap` is `./cap`, `file://localhost/x` is `./localhost/x`, `file:cap` is `./file:cap`."""
    return Path(fsspec.core.url_to_fs(location)[1] if "://" in location else location)


_CLOSE = object()


class CaptureWriter:
    """Writes delivery lines to a capture; each `submit` resolves once its line is durable.

    `submit` may be called from any thread (the receiver's event loop wraps the future with
    `asyncio.wrap_future`). Lines submitted while a flush runs go out together in the next one.
    """

    def __init__(
        self, location: str, *, writer_id: str | None = None, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.writer_id = writer_id or new_writer_id()
        if not WRITER_ID.match(self.writer_id):
            raise ValueError(f"a writer id is letters, digits, _ and - only (got {self.writer_id!r})")
        self.location = location
        self.store: SegmentStore = (
            LocalSegments(local_path(location), self.writer_id, segment_bytes)
            if is_local(location)
            else ObjectSegments(location, self.writer_id)
        )
        self.flushes = 0
        self.lines = 0
        self.slowest_flush = 0.0  # seconds: a disk or a store that stalls shows here
        self._queue: queue.SimpleQueue[tuple[bytes, Future[None]] | object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def submit(self, line: bytes) -> Future[None]:
        """Queue one line (`delivery_line`); the future is done once it is on stable storage."""
        if self._closed:
            raise RuntimeError("the capture writer is closed")
        future: Future[None] = Future()
        self._queue.put((line, future))
        return future

    def close(self) -> None:
        """Write every line already submitted, then stop (the current segment is left complete)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_CLOSE)
            self._thread.join()

    def _run(self) -> None:
        closing = False
        while not closing:
            batch: list[tuple[bytes, Future[None]]] = []
            size = 0
            item = self._queue.get()
            while True:
                if item is _CLOSE:
                    closing = True
                else:
                    line, future = t.cast(tuple[bytes, "Future[None]"], item)
                    batch.append((line, future))
                    size += len(line)
                if closing or size >= FLUSH_BYTES:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._flush(batch)
        self.store.close()

    def _flush(self, batch: list[tuple[bytes, Future[None]]]) -> None:
        # A future cancelled while queued (its request was, at the shutdown's deadline) takes no
        # result, and setting one would end this thread; its line is written all the same. Once
        # running, a future can no longer be cancelled.
        futures = [future for _, future in batch if future.set_running_or_notify_cancel()]
        started = time.monotonic()
        try:
            self.store.write(b"".join(line for line, _ in batch))
        except Exception as error:
            for future in futures:
                future.set_exception(error)
            return
        self.flushes += 1
        self.lines += len(batch)
        self.slowest_flush = max(self.slowest_flush, time.monotonic() - started)
        for future in futures:
            future.set_result(None)


def _size(fd: int) -> int:
    """A file's size on disk, or -1 when even that cannot be read."""
    try:
        return os.fstat(fd).st_size
    except OSError:
        return -1


def _sync_data(fd: int) -> None:
    """Flush a file's data (and its size) to stable storage."""
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _fsync_directory(directory: Path) -> None:
    """Make a new entry of `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
