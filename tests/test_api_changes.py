"""An API that changes under us: announced deprecations are warned about, additive changes pass."""

from __future__ import annotations

import requests

from tests.tap_runner import emulator_config, run_tap, tap_log


def _announce(emulator, announcements: dict) -> None:
    url = emulator.server.base_url + "/_emulator/announcements"
    requests.post(url, json=announcements, timeout=10).raise_for_status()


def test_deprecation_and_sunset_headers_are_one_warning_per_endpoint_per_run(start_emulator, tmp_path):
    emulator = start_emulator(20, 400, account={"contacts": 250})
    _announce(
        emulator,
        {
            "messages": {
                "Deprecation": "@1798761600",
                "Sunset": "Thu, 01 Jul 2027 00:00:00 GMT",
                "Link": '<https://docs.vobiz.ai/changes/messages-v2>; rel="deprecation"',
            },
            "contacts": {"Sunset": "Wed, 01 Sep 2027 12:00:00 GMT"},
            "channels": {"Deprecation": "true"},
        },
    )

    run = run_tap(emulator_config(emulator), tmp_path, streams=None)

    assert run.returncode == 0, run.stderr[-2000:]
    served = emulator.state.stats
    # Every response of these endpoints carried the headers (at least a page per conversation) ...
    assert served["requests:messages"] >= 20
    assert served["requests:contacts"] == 3 + 1  # 250 contacts, 100 a page, and the last page again
    assert sorted(tap_log(run.stderr, "WARNING")) == [  # ... and one warning each endpoint
        "The Vobiz API announces a breaking change of GET /channels/whatsapp: deprecated; upgrade "
        "tap-vobiz before then, or tell its maintainers",
        "The Vobiz API announces a breaking change of GET /contacts: removed on 2027-09-01 12:00 UTC; "
        "upgrade tap-vobiz before then, or tell its maintainers",
        "The Vobiz API announces a breaking change of GET /conversations/{conversation_id}/messages: "
        "deprecated since 2027-01-01 00:00 UTC and removed on 2027-07-01 00:00 UTC (see "
        "https://docs.vobiz.ai/changes/messages-v2); upgrade tap-vobiz before then, or tell its maintainers",
    ]
    assert len(run.records["messages"]) == 400


def test_unknown_enum_values_are_kept_as_received(start_emulator, tmp_path):
    emulator = start_emulator(5, 100, account={"contacts": 20})
    dataset = emulator.state.dataset
    message = dataset.conversations[0].messages[0]
    message["status"] = "played"
    template = dataset.account.templates[dataset.account.channels.rows[0]["id"]].rows[0]
    template["status"] = "PAUSED"
    campaign = dataset.campaign_data.campaigns.rows[0]
    campaign["status"] = "archived"

    run = run_tap(emulator_config(emulator), tmp_path, streams=("messages", "templates", "campaigns"))

    assert run.returncode == 0, run.stderr[-2000:]
    for stream, row in (("messages", message), ("templates", template), ("campaigns", campaign)):
        (record,) = [r for r in run.records[stream] if r["id"] == row["id"]]
        assert record["status"] == row["status"]
        assert not record.get("malformed_fields")
    assert tap_log(run.stderr, "WARNING") == []
