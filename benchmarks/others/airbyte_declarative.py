"""The conversations and their messages read by Airbyte's declarative CDK, from `airbyte_manifest.yaml`.

Run by `benchmarks/run.py --only others` in a venv of its own (`requirements-airbyte.txt`), never the
project's: the manifest through `YamlDeclarativeSource.read` (the concurrent declarative source, 8
partitions at once), every stream in full refresh, as `airbyte-cdk`'s `read` command runs it; the
records are counted here instead of written out. It prints, as its last line, a JSON object: the ids
of the conversations and messages read.

    python airbyte_declarative.py API_URL AUTH_ID AUTH_TOKEN
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from airbyte_cdk.models import (
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

MANIFEST = Path(__file__).with_name("airbyte_manifest.yaml")


def main(api_url: str, auth_id: str, auth_token: str) -> int:
    config = {"api_url": api_url, "auth_id": auth_id, "auth_token": auth_token}
    logger = logging.getLogger("airbyte")
    probe = YamlDeclarativeSource(str(MANIFEST), config=config)
    catalog = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=stream,
                sync_mode=SyncMode.full_refresh,
                destination_sync_mode=DestinationSyncMode.overwrite,
            )
            for stream in probe.discover(logger, config).streams
        ]
    )
    source = YamlDeclarativeSource(str(MANIFEST), catalog=catalog, config=config)
    ids: dict[str, list[str]] = {"conversations": [], "messages": []}
    for message in source.read(logger, config, catalog, state=[]):
        if message.type == Type.RECORD and message.record is not None:
            ids[message.record.stream].append(message.record.data["id"])
    print(json.dumps(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
