"""The emulator keeps the API's contract: paths, envelopes, auth, limits and cursors."""

from __future__ import annotations

import email.utils
import itertools
import json

import pytest
import requests

AUTH = {"X-Auth-ID": "MA_EMULATOR", "X-Auth-Token": "emulator-token"}


def _messages(emulator, conversation_id: str, **params: object) -> requests.Response:
    url = f"{emulator.api_url}/conversations/{conversation_id}/messages"
    return requests.get(url, headers=AUTH, params=params, timeout=10)


def test_requests_without_valid_credentials_get_401(start_emulator):
    emulator = start_emulator(2, 10)
    response = requests.get(f"{emulator.api_url}/conversations", timeout=10)
    assert response.status_code == 401
    assert "error" in response.json()
    bearer = {"Authorization": f"Bearer {emulator.state.bearer_token}"}
    assert requests.get(f"{emulator.api_url}/conversations", headers=bearer, timeout=10).ok


def test_message_pages_run_newest_to_oldest_and_cover_everything_once(start_emulator):
    emulator = start_emulator(1, 537, days=1)
    conversation = emulator.state.dataset.conversations[0]
    pages, cursor = [], None
    while True:
        body = _messages(emulator, conversation.id, limit=50, **({"cursor": cursor} if cursor else {})).json()
        pages.append(body["items"])
        cursor = body.get("next_cursor")
        if not body["has_more"]:
            break
    assert [len(p) for p in pages] == [50] * 10 + [37]
    keys = [[(m["created_at"], m["id"]) for m in page] for page in pages]
    for newer, older in itertools.pairwise(keys):
        assert min(newer) > max(older)
    assert sorted(k for page in keys for k in page) == [
        (m["created_at"], m["id"]) for m in conversation.messages
    ]
    # The order within a page is not specified: the emulator does not sort it.
    assert any(page != sorted(page) and page != sorted(page, reverse=True) for page in keys)


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_limit_outside_1_to_100_is_a_400(start_emulator, limit):
    emulator = start_emulator(1, 10)
    response = _messages(emulator, emulator.state.dataset.conversations[0].id, limit=limit)
    assert response.status_code == 400


def test_unknown_conversation_is_a_404(start_emulator):
    emulator = start_emulator(1, 10)
    assert _messages(emulator, "no-such-conversation").status_code == 404


def test_scripted_faults_are_served_in_order(start_emulator):
    emulator = start_emulator(1, 10)
    url = f"{emulator.api_url}/conversations"
    requests.post(
        emulator.server.base_url + "/_emulator/faults",
        json={"script": ["503", "429", "429-date", "malformed", "ok"], "retry_after": "2"},
        timeout=10,
    )
    responses = [requests.get(url, headers=AUTH, timeout=10) for _ in range(5)]
    assert [r.status_code for r in responses] == [503, 429, 429, 200, 200]
    assert responses[1].headers["Retry-After"] == "2"
    assert responses[2].headers["Retry-After"].endswith("GMT")
    with pytest.raises(json.JSONDecodeError):
        json.loads(responses[3].text)
    assert len(responses[4].json()["items"]) == 1


def test_activity_adds_messages_changes_statuses_and_closes_windows(start_emulator):
    emulator = start_emulator(50, 2000, days=3)
    dataset = emulator.state.dataset
    before = {m["id"]: m["status"] for c in dataset.conversations for m in c.messages}
    result = requests.post(
        emulator.server.base_url + "/_emulator/activity",
        json={"hours": 30, "new_conversations": 4, "new_messages": 100, "status_changes": 40},
        timeout=10,
    ).json()
    after = {m["id"]: m["status"] for c in dataset.conversations for m in c.messages}
    assert len(after) == len(before) + 100
    assert len(result["new_conversations"]) == 4
    assert len(result["status_changes"]) == 40
    assert all(before[i] != after[i] for i in result["status_changes"] if i in before)
    assert result["closed_conversations"]
    assert all(dataset.by_id[i].record["status"] == "closed" for i in result["closed_conversations"])


def test_the_same_options_give_the_same_account(start_emulator):
    first = start_emulator(20, 500, seed=5).state.dataset.export()
    second = start_emulator(20, 500, seed=5).state.dataset.export()
    assert first == second


def test_date_header_tells_the_virtual_clock_and_the_list_is_not_in_time_order(start_emulator):
    emulator = start_emulator(30, 100)
    dataset = emulator.state.dataset
    response = requests.get(f"{emulator.api_url}/conversations", headers=AUTH, timeout=10)
    assert email.utils.parsedate_to_datetime(response.headers["Date"]) == dataset.now
    started = [c["started_at"] for c in response.json()["items"]]
    assert started != sorted(started) and started != sorted(started, reverse=True)
    dataset.add_activity(hours=5)
    later = requests.get(f"{emulator.api_url}/conversations", headers=AUTH, timeout=10)
    assert email.utils.parsedate_to_datetime(later.headers["Date"]) == dataset.now
