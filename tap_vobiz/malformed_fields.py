"""Setting aside field values that do not match the documented type, without losing them.

A warehouse column typed `timestamptz` or `boolean` rejects a value such as `"N/A"`, and
one such row would fail the whole load. So a value that does not match its field's
declared type (a string that is not an RFC 3339 timestamp, a boolean given as a string,
...) is moved, exactly as received, into the record's `malformed_fields` object, and the
field itself is set to null. The row still loads, nothing is lost, and the run's final
log line counts how often it happened.
"""

from __future__ import annotations

import typing as t

from tap_vobiz.decoding import parse_timestamp_text

MALFORMED_FIELDS = "malformed_fields"


class FieldChecks(t.NamedTuple):
    """What each top-level field must be: a JSON type, an RFC 3339 timestamp, or a list of strings."""

    types: tuple[tuple[str, type | tuple[type, ...]], ...]
    timestamps: tuple[str, ...]
    string_lists: tuple[str, ...] = ()


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "object": dict,
    "integer": int,
    "number": (int, float),
}


def field_checks(schema: dict) -> FieldChecks:
    """The checks for a stream's records, from its JSON schema types (and formats)."""
    types, timestamps, string_lists = [], [], []
    for name, prop in schema["properties"].items():
        if name == MALFORMED_FIELDS:
            continue
        if prop.get("format") == "date-time":
            timestamps.append(name)
            continue
        declared = prop.get("type", [])
        if declared == "array" or "array" in declared:
            string_lists.append(name)
            continue
        kind = next((k for k in _JSON_TYPES if k == declared or k in declared), None)
        if kind:
            types.append((name, _JSON_TYPES[kind]))
    return FieldChecks(tuple(types), tuple(timestamps), tuple(string_lists))


def set_aside_malformed_fields(record: dict, checks: FieldChecks) -> list[str]:
    """Move values that fail their check into `record["malformed_fields"]`; return their names.

    This runs for every record, so it is written for speed: one `type()` per field.
    """
    malformed = []
    get = record.get
    for name, expected in checks.types:
        value = get(name)
        if value is not None and type(value) is not expected and not _is_a(value, expected):
            malformed.append(name)
    for name in checks.timestamps:
        value = get(name)
        if value is not None and (type(value) is not str or parse_timestamp_text(value) is None):
            malformed.append(name)
    for name in checks.string_lists:
        value = get(name)
        if value is not None and (type(value) is not list or any(type(v) is not str for v in value)):
            malformed.append(name)
    if not malformed:
        record[MALFORMED_FIELDS] = None
        return malformed
    record[MALFORMED_FIELDS] = {name: record[name] for name in malformed}
    for name in malformed:
        record[name] = None
    return malformed


def _is_a(value: object, expected: type | tuple[type, ...]) -> bool:
    """`isinstance`, except that a boolean is not a number (JSON keeps them apart)."""
    return isinstance(value, expected) and type(value) is not bool
