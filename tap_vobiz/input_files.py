"""The files a user hands the tap (`--config`, `--state`, `--catalog`), read and checked first.

The SDK reads them with no checks of its own: a missing config file, a state truncated by a
killed run, a catalog that is not JSON or names a stream the tap does not have each end in
a 30-line traceback, some only after requests were made. Here each file is read and its
shape checked before the tap starts, and a mistake is an `InputFileError`: one line that
names the option, the file and what is wrong.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from singer_sdk.helpers._util import load_json

from tap_vobiz.errors import VobizError
from tap_vobiz.settings import trimmed_credentials


class InputFileError(VobizError):
    """A `--config`, `--state` or `--catalog` file that cannot be used as it is."""


def read_config_files(paths: t.Iterable[str]) -> tuple[dict[str, t.Any], bool]:
    """The merged config of the `--config` files (later files win), and whether `ENV` was named.

    The credentials come without the whitespace around them (`trimmed_credentials`).
    """
    config: dict[str, t.Any] = {}
    parse_env = False
    for path in paths:
        if path == "ENV":
            parse_env = True
        else:
            config |= read_json_object("--config", path)
    return trimmed_credentials(config), parse_env


def read_state_file(path: str) -> dict[str, t.Any]:
    """A Singer state: an object whose `bookmarks` (if any) maps streams to objects.

    `meltano state get` prints the state wrapped, `{"singer_state": {...}}`, and the tap's own
    output holds it as a STATE message, `{"type": "STATE", "value": {...}}` (its last line, say):
    each is read as the state it wraps (not as a state with no bookmarks, which would be a full read).
    """
    state = read_json_object("--state", path)
    if state.get("type") == "STATE" and "value" in state and "bookmarks" not in state:
        if not isinstance(state["value"], dict):
            kind = _json_kind(state["value"])
            raise _wrong("--state", path, f'the STATE message\'s "value" is a JSON {kind}, not an object')
        state = state["value"]
    elif set(state) == {"singer_state"}:
        if not isinstance(state["singer_state"], dict):
            kind = _json_kind(state["singer_state"])
            raise _wrong("--state", path, f'"singer_state" is a JSON {kind}, not an object')
        state = state["singer_state"]
    elif "singer_state" in state and "bookmarks" not in state:
        raise _wrong("--state", path, '"singer_state" beside other keys: pass the object it holds')
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise _wrong("--state", path, f'"bookmarks" is a JSON {_json_kind(bookmarks)}, not an object')
    for stream, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            kind = _json_kind(stream_state)
            raise _wrong("--state", path, f'the bookmark of "{stream}" is a JSON {kind}, not an object')
    return state


def read_catalog_file(path: str, stream_names: t.Collection[str]) -> dict[str, t.Any]:
    """A Singer catalog whose every entry names one of `stream_names` and has a schema object."""
    catalog = read_json_object("--catalog", path)
    entries = catalog.get("streams")
    if not isinstance(entries, list):
        found = "no" if entries is None else f"a JSON {_json_kind(entries)} as"
        raise _wrong("--catalog", path, f'{found} "streams", not a list: is it a Singer catalog?')
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("tap_stream_id"), str):
            raise _wrong("--catalog", path, f'stream entry {number} has no "tap_stream_id"')
        name = entry["tap_stream_id"]
        if name not in stream_names:
            known = ", ".join(sorted(stream_names))
            raise _wrong("--catalog", path, f'names a stream tap-vobiz does not have: "{name}" ({known})')
        if not isinstance(entry.get("schema", {}), dict) or not isinstance(entry.get("metadata", []), list):
            raise _wrong(
                "--catalog", path, f'the entry of "{name}" needs a "schema" object and a "metadata" list'
            )
    return catalog


def read_json_object(option: str, path: str) -> dict[str, t.Any]:
    """The JSON object in the file at `path`; anything else is an `InputFileError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _wrong(option, path, "no such file") from None
    except IsADirectoryError:
        raise _wrong(option, path, "a directory, not a file") from None
    except PermissionError:
        raise _wrong(option, path, "permission denied") from None
    except UnicodeDecodeError:
        raise _wrong(option, path, "not UTF-8 text") from None
    except OSError as error:
        raise _wrong(option, path, error.strerror or type(error).__name__) from None
    if not text.strip():
        raise _wrong(option, path, "the file is empty")
    try:
        value = load_json(text)
    except ValueError as error:
        where = getattr(error, "lineno", None), getattr(error, "colno", None)
        detail = getattr(error, "msg", str(error)).removesuffix(" at")
        # Cut short (a run killed while writing it): the text ends inside a value.
        ends_early = getattr(error, "pos", -1) >= len(text.rstrip())
        truncated = ends_early or detail.startswith("Unterminated string")
        reason = (
            "it ends too early (truncated?)"
            if truncated
            else f"{detail} at line {where[0]} column {where[1]}"
        )
        raise _wrong(option, path, f"not valid JSON: {reason}") from None
    if not isinstance(value, dict):
        raise _wrong(option, path, f"holds a JSON {_json_kind(value)}, not an object")
    return value


def _wrong(option: str, path: str, what: str) -> InputFileError:
    return InputFileError(f"Cannot use {option} {path}: {what}")


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", type(None): "null", dict: "object"}
    return kinds.get(type(value), "number")
