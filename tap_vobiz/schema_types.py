"""Building blocks of the streams' schemas: free-form objects, enums, timestamps, `malformed_fields`."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_vobiz.malformed_fields import MALFORMED_FIELDS


class FreeFormObjectType(th.ObjectType):
    """A JSON object with any keys, declared without `properties`.

    An empty `properties` would make the SDK's schema flattening drop the column from the
    SCHEMA while still writing its keys into the records; without it, flattening keeps
    the object whole, as JSON text, in a column the SCHEMA declares.
    """

    def __init__(self) -> None:
        super().__init__(additional_properties=True)

    @property
    @override
    def type_dict(self) -> dict:
        result = super().type_dict
        result.pop("properties", None)
        return result


MALFORMED_FIELDS_PROPERTY = th.Property(
    MALFORMED_FIELDS,
    FreeFormObjectType(),
    description="Values that did not match their field's documented type (e.g. an unparseable "
    "timestamp), exactly as received, keyed by field name; those fields are null. "
    "Null when every field was well-formed.",
)

ACCOUNT_ID = th.Property("account_id", th.StringType, description="Vobiz account id (`MA_...`).")


def enum(description: str, values: t.Iterable[str], older: t.Mapping[str, str] | None = None) -> str:
    """A description that lists a string field's documented values (others are kept as received), and
    the values of older versions of the docs that an account may still return, with their meaning."""
    text = f"{description} One of: {', '.join(values)} (other values are kept as received)."
    if older:
        meanings = ", ".join(f"`{value}` ({meaning})" for value, meaning in older.items())
        text += f" Older versions of the API docs name values an account may still return: {meanings}."
    return text


def timestamp(name: str, description: str) -> th.Property:
    """An RFC 3339 UTC date-time property."""
    return th.Property(name, th.DateTimeType, description=f"{description} (UTC).")


def id_property(description: str) -> th.Property:
    """The primary key: a non-null string id."""
    return th.Property("id", th.StringType, required=True, description=description)
