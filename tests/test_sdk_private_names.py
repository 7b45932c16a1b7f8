"""The SDK's private names the tap uses are the ones docs/development.md lists ("The SDK's private names")."""

from __future__ import annotations

import re
from pathlib import Path

import singer_sdk

ROOT = Path(__file__).resolve().parent.parent
SDK = Path(singer_sdk.__file__).parent


def _private_sdk_names() -> set[str]:
    """Underscore names the installed SDK defines that tap_vobiz's code refers to, and private SDK modules
    it imports from."""
    defined: set[str] = set()
    for source in SDK.rglob("*.py"):
        text = source.read_text()
        defined |= set(re.findall(r"def (_[a-z]\w*)", text))
        defined |= set(re.findall(r"self\.(_[a-z]\w*)\s*[:=]", text))
        defined |= set(re.findall(r"^\s+(_[a-z]\w*)\s*[:=]", text, re.M))
    used: set[str] = set()
    for source in (ROOT / "tap_vobiz").glob("*.py"):
        code = "\n".join(line.split("#")[0] for line in source.read_text().splitlines())
        # A private module's name (`singer_sdk.helpers._catalog`) is listed as the module, below.
        names = re.sub(r"from singer_sdk[\w.]* import", "", code)
        used |= set(re.findall(r"\b(_[a-z]\w*)\b", names)) & defined
        used |= set(re.findall(r"from (singer_sdk[\w.]*\._\w+) import", code))
    return used


def _listed() -> set[str]:
    section = (ROOT / "docs" / "development.md").read_text().split("## The SDK's private names", 1)[1]
    return set(re.findall(r"^\| `([\w.]+)` \|", section, re.M))


def test_the_docs_list_every_private_sdk_name_the_tap_uses():
    assert _private_sdk_names() == _listed()
