"""Run the emulator: `python -m vobiz_emulator --conversations 1000 --messages 50000`."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import signal
import sys
import time

from vobiz_emulator.dataset import DEFAULT_NOW, Dataset
from vobiz_emulator.rate_limit import TokenBucket
from vobiz_emulator.server import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_BEARER_TOKEN,
    Faults,
    RunningEmulator,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vobiz_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--days", type=float, default=30, help="history spread over this many days")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--contacts", type=int, default=None, help="default: the conversations' contacts")
    parser.add_argument("--templates-per-channel", type=int, default=8)
    parser.add_argument("--canned-responses", type=int, default=12)
    parser.add_argument(
        "--contacts-max-limit", type=int, default=100, help="the most contacts served per page"
    )
    parser.add_argument("--campaigns", type=int, default=7)
    parser.add_argument("--recipients", type=int, default=300, help="recipients of all campaigns together")
    parser.add_argument("--call-logs", type=int, default=60)
    parser.add_argument("--now", default=DEFAULT_NOW.isoformat(), help="the virtual clock's start")
    parser.add_argument(
        "--conversations-page-size",
        type=int,
        default=None,
        help="conversations a page of GET /conversations, when it is paged (--conversations-paging)",
    )
    parser.add_argument(
        "--conversations-paging",
        choices=("items", "cursor", "pages"),
        default=None,
        help="how GET /conversations is paged: one list (documented today), next_cursor, or page "
        "numbers (the changelog's envelope); default: cursor with --conversations-page-size, else items",
    )
    parser.add_argument("--auth-id", default=DEFAULT_AUTH_ID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument("--bearer-token", default=DEFAULT_BEARER_TOKEN)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 5xx answers")
    parser.add_argument("--rate-limit-rate", type=float, default=0.0, help="share of 429 answers")
    parser.add_argument("--malformed-rate", type=float, default=0.0, help="share of non-JSON 200s")
    parser.add_argument(
        "--max-requests-per-second",
        type=float,
        default=0.0,
        help="the account's rate limit: a token bucket of a second's requests, 429 with Retry-After 1 "
        "beyond it (changed while running by POST /_emulator/rate-limit)",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    dataset = Dataset(
        args.conversations,
        args.messages,
        days=args.days,
        seed=args.seed,
        now=dt.datetime.fromisoformat(args.now).astimezone(dt.timezone.utc),
        channels=args.channels,
        contacts=args.contacts,
        templates_per_channel=args.templates_per_channel,
        canned_responses=args.canned_responses,
        contacts_max_limit=args.contacts_max_limit,
        campaigns=args.campaigns,
        recipients=args.recipients,
        call_logs=args.call_logs,
    )
    emulator = RunningEmulator(
        dataset,
        host=args.host,
        port=args.port,
        auth_id=args.auth_id,
        auth_token=args.auth_token,
        bearer_token=args.bearer_token,
        conversations_page_size=args.conversations_page_size,
        shape={"conversations": args.conversations_paging} if args.conversations_paging else None,
    )
    emulator.state.faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        malformed_rate=args.malformed_rate,
        seed=args.seed,
    )
    emulator.state.rate_limit = TokenBucket(per_second=args.max_requests_per_second)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with emulator:
        account = dataset.account
        print(
            f"vobiz emulator: {len(dataset.conversations)} conversations, "
            f"{dataset.message_count()} messages, {len(account.channels)} channels, "
            f"{sum(map(len, account.templates.values()))} templates, {len(account.contacts)} contacts, "
            f"{len(account.canned_responses)} canned responses, "
            f"{len(dataset.campaign_data.campaigns)} campaigns, "
            f"{sum(map(len, dataset.campaign_data.recipients.values()))} recipients, "
            f"{len(dataset.campaign_data.call_logs)} call logs, "
            f"generated in {time.monotonic() - started:.1f}s; "
            f"serving {emulator.api_url}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            emulator.thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
