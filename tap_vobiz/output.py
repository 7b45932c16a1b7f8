"""How the tap writes Singer messages: msgspec-encoded, flushed at each STATE rather than each RECORD.

The SDK's writers flush stdout after every message, one system call per record, which
costs more than encoding the record. Here RECORD lines go through stdout's buffer and
every other message (SCHEMA, STATE, ...) flushes it, so a target has every RECORD before
the STATE that covers it; the rest is flushed when the tap exits. A tap killed outright
(kill -9) loses at most the buffered RECORDs after its last STATE, which the next run,
starting from that STATE, reads again.
"""

from __future__ import annotations

import atexit
import datetime as dt
import io
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class _Output(t.Protocol):
    def write(self, data: bytes | bytearray, /) -> int: ...
    def flush(self) -> None: ...


class SingerOutput(MsgSpecWriter):
    """msgspec-encoded Singer messages on stdout, flushed at every message but RECORD."""

    BUFFER_BYTES = 1 << 20

    def __init__(self) -> None:
        super().__init__()
        self._out: _Output | None = None

    def _stream(self) -> _Output:
        # A large buffer of our own: each write to the pipe releases the GIL, and with
        # worker threads waiting for it, the main thread would wait to get it back.
        if self._out is None:
            sys.stdout.flush()
            try:
                raw = io.FileIO(sys.stdout.fileno(), "wb", closefd=False)
            except (AttributeError, ValueError, OSError):  # stdout replaced, e.g. captured by tests
                self._out = getattr(sys.stdout, "buffer", None) or _TextOutput(sys.stdout)
            else:
                buffered = io.BufferedWriter(raw, buffer_size=self.BUFFER_BYTES)
                atexit.register(buffered.flush)
                self._out = buffered
        return self._out

    @override
    def write_message(self, message: Message) -> None:
        out = self._stream()
        out.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            out.flush()

    def write_record(self, stream: str, record: dict[str, t.Any], version: int | None) -> None:
        """The line `write_message(RecordMessage(stream, record, version, now))` writes, without building
        the message: this runs once per record."""
        message: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        message["time_extracted"] = dt.datetime.now(dt.timezone.utc)
        self._stream().write(serialize_jsonl(message))


class _TextOutput:
    """Bytes written to a text stream that has no binary buffer (an `io.StringIO`)."""

    def __init__(self, text: t.TextIO) -> None:
        self.text = text

    def write(self, data: bytes | bytearray) -> int:
        return self.text.write(bytes(data).decode())

    def flush(self) -> None:
        self.text.flush()
