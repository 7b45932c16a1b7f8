"""The conversations and their messages read by dlt's `rest_api` source, as a dlt user configures it.

Run by `benchmarks/run.py --only others` in a venv of its own (`requirements-dlt.txt`), never the
project's: a declarative config (the conversations list, one page; messages a child resource per
conversation, cursor-paged by `next_cursor`, its fetches `parallelized` in dlt's thread pool, 8
workers as the tap's 8 requests in flight), loaded into DuckDB in a temporary folder. Retries and
backoff are dlt's defaults (429 and 5xx retried up to 5 times, `Retry-After` honoured, else 1, 2,
4 ... s). It prints, as its last line, a JSON object: the ids of the conversations and messages
that landed in DuckDB.

    python dlt_rest_api.py API_URL AUTH_ID AUTH_TOKEN WORKDIR
"""

from __future__ import annotations

import json
import os
import sys
import typing as t

# dlt reads its settings from the environment (`[extract] workers`, the pipelines' folder).
os.environ.setdefault("EXTRACT__WORKERS", "8")

import dlt
from dlt.sources.rest_api import rest_api_source


def source(api_url: str, auth_id: str, auth_token: str) -> t.Any:
    return rest_api_source(
        {
            "client": {
                "base_url": api_url.rstrip("/") + "/",
                "headers": {"X-Auth-ID": auth_id, "X-Auth-Token": auth_token},
            },
            "resources": [
                {
                    "name": "conversations",
                    "primary_key": "id",
                    "endpoint": {
                        "path": "conversations",
                        "data_selector": "items",
                        "paginator": "single_page",
                    },
                },
                {
                    "name": "messages",
                    "primary_key": "id",
                    "parallelized": True,
                    "endpoint": {
                        "path": "conversations/{resources.conversations.id}/messages",
                        "params": {"limit": 100},
                        "data_selector": "items",
                        "paginator": {
                            "type": "cursor",
                            "cursor_path": "next_cursor",
                            "cursor_param": "cursor",
                        },
                    },
                },
            ],
        }
    )


def main(api_url: str, auth_id: str, auth_token: str, workdir: str) -> int:
    pipeline = dlt.pipeline(
        pipeline_name="vobiz",
        pipelines_dir=os.path.join(workdir, "pipelines"),
        destination=dlt.destinations.duckdb(os.path.join(workdir, "load.duckdb")),
        dataset_name="vobiz",
    )
    pipeline.run(source(api_url, auth_id, auth_token))
    with pipeline.sql_client() as client:
        ids = {
            table: [row[0] for row in client.execute_sql(f"SELECT id FROM {table}")]  # noqa: S608
            for table in ("conversations", "messages")
        }
    print(json.dumps(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
