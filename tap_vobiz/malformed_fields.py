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

from tap_vobiz.pagination import parse_timestamp

MALFORMED_FIELDS = "malformed_fields"

Check = t.Callable[[object], bool]

_CHECKS: dict[str, Check] = {
    "date-time": lambda value: parse_timestamp(value) is not None,
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
}


def field_checks(schema: dict) -> dict[str, Check]:
    """One check per top-level property, from its JSON schema type (and format)."""
    checks = {}
    for name, prop in schema["properties"].items():
        if name == MALFORMED_FIELDS:
            continue
        types = prop.get("type", [])
        kind = (
            "date-time"
            if prop.get("format") == "date-time"
            else next((k for k in ("string", "boolean", "object") if k == types or k in types), None)
        )
        if kind:
            checks[name] = _CHECKS[kind]
    return checks


def set_aside_malformed_fields(record: dict, checks: dict[str, Check]) -> list[str]:
    """Move values that fail their check into `record["malformed_fields"]`; return their names."""
    malformed = [
        name for name, check in checks.items() if (value := record.get(name)) is not None and not check(value)
    ]
    record[MALFORMED_FIELDS] = {name: record[name] for name in malformed} if malformed else None
    for name in malformed:
        record[name] = None
    return malformed
