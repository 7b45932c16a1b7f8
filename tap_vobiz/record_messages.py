"""How a stream turns a record into RECORD messages: the catalog's selection worked out once per
stream, not walked per record, and stream-map failures that name their expression."""

from __future__ import annotations

import ast
import datetime as dt
import typing as t

from singer_sdk.exceptions import MapExpressionError
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_vobiz.output import SingerOutput

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Record
    from singer_sdk.streams import Stream

    # To the type checker the mixin is a Stream, so `@override` checks the SDK method it replaces.
    _StreamMixin = Stream
else:
    _StreamMixin = object


class LeanRecordMessages(_StreamMixin):
    """The SDK's RECORD message generation, without its per-record walk of the selection.

    `Stream._generate_record_messages` checks every field of every record, nested objects
    included, against the catalog's selection, and conforms types. The records here have
    their types checked already (`malformed_fields`, so conformance is off) and only
    top-level fields can be deselected (the nested objects declare no properties), so
    this keeps the top-level fields the catalog's schema declares and selects, worked
    out once per stream (a field pruned from the catalog, or deselected, never leaves
    the tap: users prune catalogs to keep personal data out of the warehouse), and
    otherwise does what the SDK does: stream maps, then one RECORD message per map.

    Without stream maps or flattening (the stream's one map passes records through as they are) the
    RECORD line is encoded straight from the record, the same bytes without a message
    object, a generator and two writer calls per record (`SingerOutput.write_record`).
    """

    _emitted_fields: frozenset[str] | None = None
    # The writer and stream name RECORDs go to directly; False: through the stream maps.
    _plain_records: tuple[SingerOutput, str] | t.Literal[False] | None = None

    @override
    def _write_record_message(self, record: Record) -> None:
        stream = t.cast("Stream", self)
        if self._plain_records is None:
            output, maps = stream._tap.message_writer, stream.stream_maps
            plain = len(maps) == 1 and type(maps[0]) is SameRecordTransform and not maps[0].flattening_enabled
            self._plain_records = (
                (output, maps[0].stream_alias) if plain and isinstance(output, SingerOutput) else False
            )
        if self._plain_records:
            self._keep_emitted_fields(record)
            writer, alias = self._plain_records
            writer.write_record(alias, record, stream._stream_version)
        else:
            for message in self._generate_record_messages(record):
                stream._tap.write_message(message)
        stream.state_manager.is_flushed = False

    def _keep_emitted_fields(self, record: Record) -> None:
        """Drop the fields the catalog's schema does not declare or does not select."""
        if self._emitted_fields is None:
            stream = t.cast("Stream", self)
            mask = stream.mask
            self._emitted_fields = frozenset(
                name for name in stream.effective_schema["properties"] if mask[("properties", name)]
            )
        if not self._emitted_fields.issuperset(record):
            for name in record.keys() - self._emitted_fields:
                del record[name]

    @override
    def _generate_record_messages(self, record: Record) -> t.Generator[RecordMessage, None, None]:
        stream = t.cast("Stream", self)
        self._keep_emitted_fields(record)
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
                    time_extracted=dt.datetime.now(dt.timezone.utc),
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
