"""Run with target-snowflake's own Python (its Meltano venv): how it would create our tables.

    python tests/snowflake_probe.py CATALOG_JSON TIMESTAMP_TYPE

Prints, as JSON, each stream's columns: the Snowflake type target-snowflake maps the
property to and the identifier it would use, without connecting to Snowflake.
"""

from __future__ import annotations

import json
import sys

from snowflake.sqlalchemy.snowdialect import SnowflakeDialect
from target_snowflake.connector import SnowflakeConnector

catalog_path, timestamp_type = sys.argv[1], sys.argv[2]
dialect = SnowflakeDialect()
connector = SnowflakeConnector(
    config={"account": "probe", "user": "probe", "database": "PROBE", "timestamp_type": timestamp_type}
)
# The connector's identifier formatter comes from a live engine; the dialect's own is the same.
connector.__dict__["formatter"] = dialect.identifier_preparer
with open(catalog_path) as catalog_file:
    catalog = json.load(catalog_file)
print(
    json.dumps(
        {
            stream["stream"]: {
                name: {
                    "type": str(connector.to_sql_type(prop).compile(dialect=dialect)),
                    "identifier": connector.format_identifier(name, safe=True),
                }
                for name, prop in stream["schema"]["properties"].items()
            }
            for stream in catalog["streams"]
        }
    )
)
