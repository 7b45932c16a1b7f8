"""How the tap writes Singer messages: msgspec-encoded, flushed at each STATE rather than each RECORD.

The SDK's writers flush stdout after every message, one system call per record, which
costs more than encoding the record. Here RECORD lines go through stdout's buffer and
every other message (SCHEMA, STATE, ...) flushes it, so a target has every RECORD before
the STATE that covers it; the rest is flushed when the tap exits. A tap killed outright
(kill -9) loses at most the buffered RECORDs after its last STATE, which the next run,
starting from that STATE, reads again.
"""

from __future__ import annotations

import ast
import atexit
import io
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import MapExpressionError
from singer_sdk.helpers._util import utc_now
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.simple import Message

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Record
    from singer_sdk.streams import Stream


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

    def write_message(self, message: Message) -> None:
        out = self._stream()
        out.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            out.flush()


class _TextOutput:
    """Bytes written to a text stream that has no binary buffer (an `io.StringIO`)."""

    def __init__(self, text: t.TextIO) -> None:
        self.text = text

    def write(self, data: bytes | bytearray) -> int:
        return self.text.write(bytes(data).decode())

    def flush(self) -> None:
        self.text.flush()


class LeanRecordMessages:
    """The SDK's RECORD message generation, without its per-record walk of the selection.

    `Stream._generate_record_messages` checks every field of every record, nested objects
    included, against the catalog's selection, and conforms types. The records here have
    their types checked already (`malformed_fields`, so conformance is off) and only
    top-level fields can be deselected (the nested objects declare no properties), so
    this keeps the top-level fields the catalog's schema declares and selects, worked
    out once per stream (a field pruned from the catalog, or deselected, never leaves
    the tap: users prune catalogs to keep personal data out of the warehouse), and
    otherwise does what the SDK does: stream maps, then one RECORD message per map.
    """

    _emitted_fields: frozenset[str] | None = None

    def _generate_record_messages(self, record: Record) -> t.Generator[RecordMessage, None, None]:
        stream = t.cast("Stream", self)
        if self._emitted_fields is None:
            mask = stream.mask
            self._emitted_fields = frozenset(
                name for name in stream.effective_schema["properties"] if mask[("properties", name)]
            )
        if not self._emitted_fields.issuperset(record):
            for name in record.keys() - self._emitted_fields:
                del record[name]
        for stream_map in stream.stream_maps:
            try:
                mapped_record = stream_map.transform(record)
            except MapExpressionError:
                raise
            except Exception as error:
                # The SDK turns only the evaluator's own errors into MapExpressionError;
                # an expression that raises on a record (a missing key, ...) would end in
                # a traceback naming neither the stream nor the expression.
                raise _failed_expression(stream, stream_map, record, error) from None
            if mapped_record is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped_record,
                    version=stream._stream_version,
                    time_extracted=utc_now(),
                )


# Stream map keys that configure the map rather than name a property's expression.
_MAP_OPTIONS = frozenset({"__alias__", "__source__", "__else__", "__key_properties__"})


def _failed_expression(
    stream: Stream, stream_map: t.Any, record: Record, error: Exception
) -> MapExpressionError:
    """A MapExpressionError naming the stream, the property and the expression that raised `error`."""
    expressions = (stream.config.get("stream_maps") or {}).get(stream.name) or {}
    for name, expression in expressions.items():
        if not isinstance(expression, str) or name in _MAP_OPTIONS:
            continue
        try:
            stream_map._eval(expression, ast.parse(expression).body[0], dict(record), name)
        except Exception:
            return MapExpressionError(
                f"stream {stream.name}, property {name}: {expression!r} raised {type(error).__name__}: "
                f"{error} (record {record.get('id')!r})"
            )
    return MapExpressionError(f"stream {stream.name}: an expression raised {type(error).__name__}: {error}")
