"""Reading the webhook capture the `vobiz-webhooks` receiver writes: its segments, from a bookmark.

The capture (docs/webhooks.md, "The capture") is a directory, or an fsspec URL
(`s3://bucket/prefix`), holding `segments/<writer_id>/<seq>.jsonl`: each receiver process (a
writer) appends one JSON line per verified delivery to its current segment and moves to `seq + 1`
at a size limit (on an object store each flush is a new object); a segment is never appended to
once its successor exists. So a reader needs no lock and no list of files read: per writer, the
segment it reached and the byte offset after the last complete line it read,

    {"writers": {"<writer_id>": {"seq": 3, "offset": 18734}}}

and reads on from there: the rest of that segment, then every later one whole. Bytes after the
last newline of a writer's newest segment are a line still being written: they are left for the
next run. Bytes after the last newline of a segment whose successor exists are a line the writer
never finished (a crash mid-write, before it acknowledged the event): counted, skipped, logged.

Why not the SDK's bookmarks: they hold one replication-key value per stream or partition; the
capture's order is per writer, and its position is a (segment, offset) per writer.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

from tap_vobiz.connection import redact
from tap_vobiz.webhook_capture import location_secrets

if t.TYPE_CHECKING:
    import logging

    from fsspec.spec import AbstractFileSystem

SEGMENTS = "segments"
WRITER_ID = re.compile(r"[A-Za-z0-9_-]+")
SEGMENT_NAME = re.compile(r"([0-9]{12})\.jsonl")
# Bytes read at a time: the lines of one chunk are one batch, and the bookmark moves per batch.
CHUNK_BYTES = 4 << 20


class CaptureUnreadableError(OSError):
    """The capture's location cannot be listed or a segment cannot be read (permissions, network).

    Raised for whatever the file system raised: fsspec's stores have errors of their own, not
    only OSError (botocore's EndpointConnectionError, NoCredentialsError), and one store's
    trouble must end the capture's streams, not the run. Its text never holds the password of a
    URL (`sftp://user:password@host/capture`).
    """


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    """How far a writer's segments were read: the segment and the byte after its last line read."""

    seq: int
    offset: int

    def to_state(self) -> dict[str, int]:
        return {"seq": self.seq, "offset": self.offset}


@dataclasses.dataclass(frozen=True)
class Batch:
    """The complete lines read from one place of one segment, and the position after them."""

    writer: str
    position: Position
    lines: list[bytes]


def read_bookmark(value: object) -> tuple[dict[str, Position], list[str]]:
    """The positions a state's `writers` object holds, and what was wrong with it (ignored entries)."""
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, [f"`writers` is not an object ({type(value).__name__})"]
    positions: dict[str, Position] = {}
    problems: list[str] = []
    for writer, place in value.items():
        seq = place.get("seq") if isinstance(place, dict) else None
        offset = place.get("offset") if isinstance(place, dict) else None
        if (
            type(seq) is int
            and type(offset) is int
            and seq >= 1
            and offset >= 0
            and WRITER_ID.fullmatch(str(writer))
        ):
            positions[writer] = Position(seq, offset)
        else:
            problems.append(f"writer {str(writer)[:80]!r}: {str(place)[:80]}")
    return positions, problems


class CaptureReader:
    """The lines of a capture after a bookmark, in batches, writer by writer, segment by segment.

    `positions` is where each writer's reading got to once a batch was handed out: the
    bookmark to keep once that batch's lines were dealt with. `torn_lines` counts the
    unfinished lines skipped at the end of finished segments.
    """

    def __init__(
        self,
        location: str,
        positions: t.Mapping[str, Position],
        logger: logging.Logger,
        *,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.location = location
        self.positions: dict[str, Position] = dict(positions)
        self.torn_lines = 0
        self.logger = logger
        self._chunk_bytes = chunk_bytes
        self._hidden = location_secrets(location)
        try:
            self.file_system, self._root = _file_system(location)
        except Exception as error:  # a store's own errors too (see CaptureUnreadableError)
            raise self._unreadable(f"cannot open {location}", error) from None

    def segments(self) -> dict[str, list[int]]:
        """Each writer's segment numbers, ascending; names that do not follow the format are ignored."""
        base = f"{self._root.rstrip('/')}/{SEGMENTS}"
        try:
            if not self.file_system.exists(base):
                # Said, not failed: a new deployment has nothing yet, but a location mistyped (or
                # not the receiver's) would read nothing for ever without a word.
                self.logger.warning(
                    "The webhook capture %s holds no segments yet: no receiver has written there "
                    "(check webhook_capture if one should have)",
                    redact(self.location, self._hidden),
                )
                return {}
            writers = self.file_system.ls(base, detail=True)
            found: dict[str, list[int]] = {}
            for entry in writers:
                name = _base_name(entry["name"])
                if entry.get("type") != "directory" or not WRITER_ID.fullmatch(name):
                    continue
                numbers = sorted(
                    int(match.group(1))
                    for path in self.file_system.ls(entry["name"], detail=False)
                    if (match := SEGMENT_NAME.fullmatch(_base_name(str(path))))
                )
                if numbers:
                    found[name] = numbers
        except Exception as error:  # a store's own errors too (see CaptureUnreadableError)
            raise self._unreadable(f"cannot list {base}", error) from None
        return found

    def _unreadable(self, what: str, error: Exception) -> CaptureUnreadableError:
        reason = str(error) or type(error).__name__
        if not isinstance(error, OSError):
            reason = f"{type(error).__name__}: {reason}"
        return CaptureUnreadableError(redact(f"{what}: {reason}", self._hidden))

    def batches(self) -> t.Iterator[Batch]:
        """The complete lines after each writer's position, a chunk at a time."""
        for writer, numbers in sorted(self.segments().items()):
            start = self.positions.get(writer, Position(0, 0))
            for index, seq in enumerate(numbers):
                if seq < start.seq:
                    continue
                offset = start.offset if seq == start.seq else 0
                finished = index + 1 < len(numbers)
                yield from self._read_segment(writer, seq, offset, finished=finished)

    def _read_segment(self, writer: str, seq: int, offset: int, *, finished: bool) -> t.Iterator[Batch]:
        path = f"{self._root.rstrip('/')}/{SEGMENTS}/{writer}/{seq:012d}.jsonl"
        try:
            with self.file_system.open(path, "rb") as segment:
                size = segment.seek(0, 2)
                if offset > size:
                    self.logger.warning(
                        "The webhook capture's segment %s/%012d is shorter (%d bytes) than the bookmark's "
                        "offset %d: it was replaced; reading it again from its start",
                        writer,
                        seq,
                        size,
                        offset,
                    )
                    offset = 0
                segment.seek(offset)
                carry = b""
                while chunk := segment.read(self._chunk_bytes):
                    data = carry + chunk if carry else chunk
                    end = data.rfind(b"\n")
                    if end < 0:
                        carry = data
                        continue
                    carry = data[end + 1 :]
                    offset += end + 1
                    lines = data[:end].split(b"\n")
                    self.positions[writer] = Position(seq, offset)
                    yield Batch(writer, Position(seq, offset), lines)
        except Exception as error:  # a store's own errors too (see CaptureUnreadableError)
            raise self._unreadable(f"cannot read {path}", error) from None
        if finished and carry:
            self.torn_lines += 1
            self.logger.warning(
                "Skipping an unfinished line at the end of the webhook capture's segment %s/%012d "
                "(%d bytes, never completed by its writer, so never acknowledged)",
                writer,
                seq,
                len(carry),
            )
            offset += len(carry)
        if finished or self.positions.get(writer, Position(0, 0)) < Position(seq, offset):
            self.positions[writer] = Position(seq, offset)
            yield Batch(writer, Position(seq, offset), [])


def _file_system(location: str) -> tuple[AbstractFileSystem, str]:
    """The file system and root path of a local directory or an fsspec URL (which may raise
    ImportError, "Install s3fs to access S3"; ValueError, an unknown protocol; or fail to connect)."""
    if "://" not in location:
        if Path(location).exists() and not Path(location).is_dir():
            raise CaptureUnreadableError("it is a file, not the capture's directory")
        return fsspec.filesystem("file"), location
    return url_to_fs(location)


def _base_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
