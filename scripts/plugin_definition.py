"""Write tap-vobiz's Meltano Hub plugin definition (`tap-vobiz.yml`) from `tap-vobiz --about`.

Users add the tap to their own Meltano project from that file:

    meltano add --plugin-type extractor tap-vobiz --from-ref <path or URL of tap-vobiz.yml>

Settings (names, kinds, labels, descriptions, defaults, which are sensitive) and
capabilities come from the installed tap's `--about --format=json`, so the file cannot
drift from the tap; `tests/test_plugin_definition.py` fails when it is not what this
script writes. Run `python scripts/plugin_definition.py` after changing a setting.
`--check` only compares.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "tap-vobiz.yml"
TAP = Path(sys.executable).with_name("tap-vobiz")
# What `--about` does not say: where the tap lives, and which settings make a valid config
# (the pairs `config_errors` in tap_vobiz/settings.py asks for).
HUB_METADATA = {
    "variant": "vobiz",
    "label": "Vobiz",
    "domain_url": "https://vobiz.ai",
    "docs": "https://github.com/vobiz/tap-vobiz#readme",
    "repo": "https://github.com/vobiz/tap-vobiz",
    "pip_url": "tap-vobiz",
    "maintenance_status": "active",
    "keywords": ["api", "meltano_sdk", "whatsapp", "messaging"],
    "settings_group_validation": [["auth_id", "auth_token"], ["bearer_token"]],
}
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "object": "object",
}
HEADER = (
    "# Meltano Hub plugin definition of tap-vobiz, written by scripts/plugin_definition.py from\n"
    "# `tap-vobiz --about`: do not edit by hand. Add the tap to a Meltano project with\n"
    "#   meltano add --plugin-type extractor tap-vobiz --from-ref <path or URL of this file>\n"
)


def about() -> dict:
    """The installed tap's `--about --format=json`."""
    completed = subprocess.run(
        [str(TAP), "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def definition(about: dict) -> dict:
    """The Hub definition: `HUB_METADATA` around the tap's own name, description, capabilities, settings."""
    settings = []
    for name, prop in about["settings"]["properties"].items():
        kind = "date_iso8601" if prop.get("format") == "date-time" else KINDS[prop["type"][0]]
        setting = {"name": name, "kind": kind, "label": prop.get("title", name)}
        if "default" in prop:
            setting["value"] = prop["default"]
        if prop.get("secret"):
            setting["sensitive"] = True
        setting["description"] = prop.get("description", "")
        settings.append(setting)
    return {
        "name": about["name"],
        "namespace": about["name"].replace("-", "_"),
        "description": about["description"],
        "executable": about["name"],
        **HUB_METADATA,
        "capabilities": sorted(about["capabilities"]),
        "settings": settings,
    }


def render(about_output: dict) -> str:
    return HEADER + yaml.safe_dump(definition(about_output), sort_keys=False, width=100, allow_unicode=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if tap-vobiz.yml is not up to date")
    text = render(about())
    if parser.parse_args().check:
        if not DEFINITION.exists() or DEFINITION.read_text() != text:
            print(
                f"{DEFINITION.name} is out of date: run python scripts/plugin_definition.py", file=sys.stderr
            )
            return 1
        return 0
    DEFINITION.write_text(text)
    print(f"wrote {DEFINITION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
