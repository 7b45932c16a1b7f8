"""The minimal reference client: plain `requests` + `json`, no SDK, one request at a time.

Reads every record of one family of streams from a Vobiz API (the emulator) and writes
each as a Singer-style RECORD line to stdout, as directly as Python allows:
`conversations` (every conversation and every message, cursor-paged) or `contacts` (the
contact list, page by page). The benchmark compares the tap's records per second with
this one's.

    python benchmarks/reference_client.py conversations|contacts API_URL AUTH_ID AUTH_TOKEN > /dev/null
"""

from __future__ import annotations

import json
import sys

import requests


def conversations(session: requests.Session, api_url: str) -> int:
    out = sys.stdout
    count = 0
    listed = session.get(f"{api_url}/conversations", timeout=60).json()["items"]
    for conversation in listed:
        out.write(json.dumps({"type": "RECORD", "stream": "conversations", "record": conversation}) + "\n")
        count += 1
    for conversation in listed:
        url = f"{api_url}/conversations/{conversation['id']}/messages"
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = session.get(url, params=params, timeout=60).json()
            for message in page["items"]:
                message.setdefault("conversation_id", conversation["id"])
                out.write(json.dumps({"type": "RECORD", "stream": "messages", "record": message}) + "\n")
                count += 1
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
    return count


def contacts(session: requests.Session, api_url: str) -> int:
    out = sys.stdout
    count, number = 0, 1
    while True:
        page = session.get(f"{api_url}/contacts", params={"page": number, "limit": 100}, timeout=60).json()
        for contact in page["items"]:
            out.write(json.dumps({"type": "RECORD", "stream": "contacts", "record": contact}) + "\n")
            count += 1
        if not page.get("has_more") or not page["items"]:
            return count
        number += 1


def main(family: str, api_url: str, auth_id: str, auth_token: str) -> int:
    session = requests.Session()
    session.headers.update({"X-Auth-ID": auth_id, "X-Auth-Token": auth_token})
    read = {"conversations": conversations, "contacts": contacts}[family]
    print(read(session, api_url), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
