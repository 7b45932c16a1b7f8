"""The emulator keeps the API's contract: paths, envelopes, auth, limits and cursors."""

from __future__ import annotations

import email.utils
import itertools
import json

import pytest
import requests

from vobiz_emulator.account_data import rfc3339

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


# Page-numbered lists: channels, templates, contacts, canned responses


def _get(emulator, path: str, **params: object) -> requests.Response:
    return requests.get(f"{emulator.api_url}{path}", headers=AUTH, params=params, timeout=10)


def test_page_numbered_lists_serve_the_documented_envelopes_and_page_sizes(start_emulator):
    emulator = start_emulator(4, 20, account={"contacts": 130, "templates_per_channel": 45})
    channels = _get(emulator, "/channels/whatsapp").json()
    assert set(channels) == {"items"} and len(channels["items"]) == 3  # documented without paging
    assert "access_token" not in channels["items"][0]

    contacts = _get(emulator, "/contacts").json()  # default limit 25
    assert {k: contacts[k] for k in ("total", "page", "limit", "has_more")} == {
        "total": 130,
        "page": 1,
        "limit": 25,
        "has_more": True,
    }
    last = _get(emulator, "/contacts", page=2, limit=500).json()  # clamped to the server's 100
    assert (len(last["items"]), last["limit"], last["has_more"]) == (30, 100, False)
    beyond = _get(emulator, "/contacts", page=9, limit=100).json()
    assert (beyond["items"], beyond["has_more"]) == ([], False)
    for bad in ({"page": 0}, {"page": "x"}, {"limit": -1}):
        assert _get(emulator, "/contacts", **bad).status_code == 400

    channel_id = channels["items"][0]["id"]
    templates = _get(emulator, f"/channels/{channel_id}/templates", limit=100).json()
    assert (len(templates["items"]), templates["limit"], templates["total"]) == (
        20,
        20,
        45,
    )  # 20 whatever asked
    assert {t["channel_id"] for t in templates["items"]} == {channel_id}
    assert len({t["status"] for t in emulator.state.dataset.account.export()["templates"]}) > 2
    assert _get(emulator, "/channels/no-such-channel/templates").status_code == 404
    canned = _get(emulator, "/canned-responses").json()
    assert canned["limit"] == 20 and set(canned["items"][0]) == {"id", "shortcut", "content", "created_at"}


def test_a_row_deleted_while_a_client_pages_moves_the_rows_behind_it(start_emulator):
    emulator = start_emulator(2, 10, account={"contacts": 60})
    first = _get(emulator, "/contacts", page=1, limit=20).json()["items"]
    requests.post(
        f"{emulator.api_url.split('/api/')[0]}/_emulator/changes",
        json={"collection": "contacts", "delete_ids": [first[0]["id"]], "create": 2},
        timeout=10,
    ).raise_for_status()
    second = _get(emulator, "/contacts", page=2, limit=20).json()
    # The 21st row moved up to page 1 (already read): it is on neither page; the new rows come last.
    assert second["total"] == 61
    ids = [row["id"] for row in first + second["items"]]
    assert len(set(ids)) == 40 and first[0]["id"] in ids
    everything = [row["id"] for row in emulator.state.dataset.account.contacts]
    assert everything[19] not in ids
    # Stamped a second after the clock it found; the clock moved a second on after the change.
    assert emulator.state.dataset.account.contacts.rows[-1]["created_at"] == "2026-11-01T00:00:01Z"
    assert emulator.state.dataset.export()["now"] == "2026-11-01T00:00:02Z"


def test_changes_wait_for_the_requests_they_are_timed_by(start_emulator):
    emulator = start_emulator(2, 10, account={"contacts": 30})
    base = emulator.api_url.split("/api/")[0]
    requests.post(
        f"{base}/_emulator/changes",
        json={"collection": "contacts", "create": 1, "after_requests": 2},
        timeout=10,
    ).raise_for_status()
    totals = [_get(emulator, "/contacts").json()["total"] for _ in range(4)]
    assert totals == [30, 30, 31, 31]
    bad = requests.post(f"{base}/_emulator/changes", json={"collection": "nope"}, timeout=10)
    assert bad.status_code == 400


def test_the_emulator_generates_an_account_of_100000_contacts_with_distinct_ids():
    from vobiz_emulator.dataset import Dataset

    dataset = Dataset(10, 100, contacts=100_000)
    assert len({row["id"] for row in dataset.account.contacts}) == 100_000


# Campaigns, recipients, call logs


def test_campaign_counters_agree_with_recipients_as_time_moves_on():
    import datetime as dt

    from vobiz_emulator.campaign_data import counters
    from vobiz_emulator.dataset import Dataset

    dataset = Dataset(10, 100, campaigns=40, recipients=4000, call_logs=50)
    data = dataset.campaign_data

    def check() -> None:
        for campaign in data.campaigns:
            recipients = list(data.recipients[campaign["id"]])
            assert {k: campaign[k] for k in counters([])} == counters(recipients)
            assert campaign["total_recipients"] == len(recipients)
            for row in recipients:
                assert (row["sent_at"] is None) == (row["status"] in {"queued", "failed", "skipped"})
                assert (row["delivered_at"] is not None) == (row["status"] in {"delivered", "read"})
                assert (row["read_at"] is not None) == (row["status"] == "read")
                assert (row["error_code"] is not None) == (row["status"] == "failed")

    check()
    completed_reads = {c["id"]: c["read_count"] for c in data.campaigns if c["status"] == "completed"}
    scheduled = [c for c in data.campaigns if c["status"] == "scheduled"]
    dataset.now += dt.timedelta(days=3)  # past every scheduled start
    activity = dataset.add_activity(hours=6, receipts=1500, new_campaigns=2, new_calls=7)
    check()
    assert set(activity["campaigns_started"]) >= {c["id"] for c in scheduled}
    assert any(
        c["read_count"] > completed_reads[c["id"]] for c in data.campaigns if c["id"] in completed_reads
    )
    assert len(activity["new_calls"]) == 7 and len(activity["new_campaigns"]) == 2
    changed = set(activity["recipient_changes"])
    assert all(
        row["updated_at"] > rfc3339(dataset.now - dt.timedelta(hours=6, seconds=1))
        for rows in data.recipients.values()
        for row in rows
        if row["id"] in changed
    )


def test_campaign_lists_serve_the_documented_envelopes(start_emulator):
    emulator = start_emulator(4, 20, account={"campaigns": 7, "recipients": 200, "call_logs": 120})
    campaigns = _get(emulator, "/campaigns").json()
    assert campaigns["limit"] == 20 and campaigns["total"] == 7
    assert _get(emulator, "/campaigns", limit=101).status_code == 400  # the one documented maximum
    campaign_id = campaigns["items"][0]["id"]
    recipients = _get(emulator, f"/campaigns/{campaign_id}/recipients").json()
    assert recipients["limit"] == 50
    assert _get(emulator, "/campaigns/nope/recipients").status_code == 404
    calls = _get(emulator, "/calls/whatsapp/logs", limit=100).json()
    assert (calls["limit"], calls["total"]) == (50, 120)  # served 50 at most
    missed = _get(emulator, "/calls/whatsapp/logs", status="missed", limit=100).json()["items"]
    assert missed and all(c["answered_at"] is None and c["duration_seconds"] == 0 for c in missed)
    assert "192.0.2." in calls["items"][0]["offer_sdp"]


def test_the_rate_limit_is_a_token_bucket_that_moves_on_its_schedule(start_emulator):
    emulator = start_emulator(2, 10)
    base = emulator.api_url.split("/api/", 1)[0]
    url = f"{emulator.api_url}/conversations"
    set_limit = {"per_second": 3, "body": True, "retry_after": "2", "schedule": [[0.5, 1000]]}
    assert requests.post(f"{base}/_emulator/rate-limit", json=set_limit, timeout=10).ok

    burst = [requests.get(url, headers=AUTH, timeout=10) for _ in range(4)]
    assert [r.status_code for r in burst] == [200, 200, 200, 429]  # a second's worth, then refused
    assert burst[3].headers["Retry-After"] == "2"
    details = burst[3].json()["error"]["details"]
    assert details["limitType"] == "cps" and details["limit"] == 3 and details["retryAfter"] == 2
    report = requests.get(f"{base}/_emulator/rate-limit", timeout=10).json()
    assert len(report["served"]) == 3 and len(report["refused"]) == 1

    while requests.get(f"{base}/_emulator/rate-limit", timeout=10).json()["served"][-1] < 0.6:
        requests.get(url, headers=AUTH, timeout=10)  # the schedule raised the limit at 0.5 s
    assert all(requests.get(url, headers=AUTH, timeout=10).ok for _ in range(20))
    assert requests.post(f"{base}/_emulator/rate-limit", json={}, timeout=10).ok
    assert all(requests.get(url, headers=AUTH, timeout=10).ok for _ in range(20))
