"""Signed deliveries against the webhook receiver (`vobiz-webhooks serve`, a local capture directory).

    .venv/bin/python benchmarks/run.py --only webhooks            # in the benchmark table
    .venv/bin/python benchmarks/webhook_load.py --rate 1000 --seconds 10

Three loads, each against a fresh receiver process, from this process (an asyncio client on
raw keep-alive connections, every body signed before the clock starts, so that the client
costs little of the 2 cores the receiver runs on):

- sustained: deliveries offered at a fixed rate (open loop: a delivery's latency counts from
  when it was due, so a stalled receiver cannot hide behind a stalled client), spread over up
  to 64 connections; the acknowledged rate and the p50/p99 of the acknowledgement latency.
- most: 32 connections each sending its next delivery as soon as the previous is answered;
  deliveries acknowledged a second.

- killed: the sustained load for 6 s, the receiver killed -9 after 3.

After each load the receiver is stopped (SIGTERM; or was killed) and the capture read: every
acknowledged delivery must be in it, by event id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.webhook_receiver import start_receiver  # noqa: E402
from tap_vobiz.webhook_signature import sign  # noqa: E402

SECRET = "benchmark-secret"  # noqa: S105 - a benchmark's secret
LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
SLOWEST = re.compile(r"slowest (\d+) ms")


def delivery(host: str) -> tuple[str, bytes]:
    """One signed `message.status` delivery as HTTP/1.1 request bytes, shaped as Vobiz documents it."""
    event_id = str(uuid.uuid4())
    wamid = "wamid." + uuid.uuid4().hex.upper()
    body = json.dumps(
        {
            "event_id": event_id,
            "event_type": "message.status",
            "account_id": "MA_EMULATOR",
            "occurred_at": "2026-11-01T10:00:02Z",
            "payload": {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "102290129340398",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": "4915123456789",
                                        "phone_number_id": "106540352242922",
                                    },
                                    "statuses": [
                                        {
                                            "id": wamid,
                                            "status": "delivered",
                                            "timestamp": "1793527200",
                                            "recipient_id": "4917612345678",
                                            "pricing": {
                                                "billable": True,
                                                "pricing_model": "PMP",
                                                "type": "regular",
                                                "category": "utility",
                                            },
                                        }
                                    ],
                                },
                            }
                        ],
                    }
                ],
            },
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST /vobiz HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"X-Webhook-Signature: {sign(SECRET, body)}\r\nX-Webhook-Event: message.status\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return event_id, head.encode() + body


@dataclass
class Load:
    offered: int
    acknowledged: int
    seconds: float
    latencies: list[float]
    captured: int = 0
    slowest_flush_ms: float = 0.0  # the receiver's slowest write + fdatasync, from its shutdown line
    acked_ids: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.acknowledged / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(share * len(ordered)), len(ordered) - 1)] * 1000


async def _connection(
    connected: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    jobs: asyncio.Queue,
    latencies: list[float],
    acked: list[str],
) -> None:
    reader, writer = connected
    try:
        while (job := await jobs.get()) is not None:
            if reader.at_eof():
                continue  # the receiver is gone (killed): what is left is never answered
            due, event_id, request = job
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                match = LENGTH.search(head)
                await reader.readexactly(int(match.group(1)) if match else 0)
            except (OSError, asyncio.IncompleteReadError):
                reader.feed_eof()
                continue
            latencies.append(time.perf_counter() - due)
            if head.startswith(b"HTTP/1.1 200"):
                acked.append(event_id)
    finally:
        writer.close()


async def _offer(url: str, requests: list[tuple[str, bytes]], rate: float | None, connections: int) -> Load:
    """Send `requests` at `rate` a second (None: each connection as fast as it is answered)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    jobs: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    acked: list[str] = []
    # Connected before the clock starts: the load measures answers, not TCP handshakes.
    opened = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(connections)))
    workers = [asyncio.create_task(_connection(pair, jobs, latencies, acked)) for pair in opened]
    start = time.perf_counter()
    for number, (event_id, request) in enumerate(requests):
        due = start + number / rate if rate else time.perf_counter()
        if rate and (wait := due - time.perf_counter()) > 0.001:
            await asyncio.sleep(wait)
        jobs.put_nowait((due if rate else time.perf_counter(), event_id, request))
        if not rate and jobs.qsize() > connections:
            await asyncio.sleep(0)
            while jobs.qsize() > connections:
                await asyncio.sleep(0.0005)
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    seconds = time.perf_counter() - start
    return Load(len(requests), len(acked), seconds, latencies, acked_ids=acked)


def run_load(rate: float | None, seconds: float, connections: int, kill_after: float | None = None) -> Load:
    """One load against a fresh receiver; the acknowledged deliveries found in its capture counted after
    a graceful stop (or after `kill -9` at `kill_after` seconds into the load)."""
    with tempfile.TemporaryDirectory(prefix="vobiz-webhooks-bench-") as directory:
        capture = Path(directory)
        receiver = start_receiver(capture, secret=SECRET)
        host = receiver.url.removeprefix("http://")
        count = int((rate or 3000) * seconds)
        requests = [delivery(host) for _ in range(count)]
        if kill_after is not None:
            threading.Timer(kill_after, receiver.process.kill).start()
        load = asyncio.run(_offer(receiver.url, requests, rate, connections))
        log = receiver.stop()
        slowest = SLOWEST.search(log)
        load.slowest_flush_ms = float(slowest.group(1)) if slowest else float("nan")
        load.captured = len(set(load.acked_ids) & captured_ids(capture))
    return load


def captured_ids(capture: Path) -> set[str]:
    """The event ids of every complete line of the capture."""
    ids = set()
    for segment in capture.glob("segments/*/*.jsonl"):
        data = segment.read_bytes()
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            ids.add(json.loads(json.loads(line)["body"])["event_id"])
    return ids


def median_load(loads: list[Load]) -> Load:
    """The run whose acknowledged rate is the median (its latencies with it)."""
    return sorted(loads, key=lambda load: load.per_second)[len(loads) // 2]


def scenarios(repeat: int, rate: float = 1000, seconds: float = 10) -> list[tuple[str, str, str, str]]:
    """The benchmark table's rows: sustained rate and p99, then the most a second."""
    sustained = [run_load(rate, seconds, 64) for _ in range(repeat)]
    most = [run_load(None, seconds, 32) for _ in range(repeat)]
    killed = [run_load(rate, 6, 64, kill_after=3) for _ in range(repeat)]
    for load in (*sustained, *most, *killed):
        if load.captured < load.acknowledged:
            raise SystemExit(
                f"the capture holds {load.captured} of {load.acknowledged} acknowledged deliveries"
            )
    held = median_load(sustained)
    p99 = statistics.median(load.percentile(0.99) for load in sustained)
    p50 = statistics.median(load.percentile(0.50) for load in sustained)
    best = median_load(most)
    flush = statistics.median(load.slowest_flush_ms for load in sustained)
    busy = "load average " + ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"webhooks: {rate:,.0f}/s offered -> {held.per_second:,.0f}/s acknowledged, p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms (slowest flush {flush:.0f} ms); most {best.per_second:,.0f}/s "
        f"(p99 {best.percentile(0.99):.1f} ms); killed -9: "
        + ", ".join(f"{load.captured} of {load.acknowledged} acknowledged captured" for load in killed)
        + f"; {busy}",
        flush=True,
    )
    return [
        (
            f"webhook receiver, {rate:,.0f} signed deliveries/s offered for {seconds:.0f} s, 64 connections",
            "vobiz-webhooks serve",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            f"{held.per_second:,.0f}",
        ),
        (
            f"webhook receiver, as fast as answered for {seconds:.0f} s, 32 connections",
            "vobiz-webhooks serve",
            f"p99 {best.percentile(0.99):.1f} ms",
            f"{best.per_second:,.0f}",
        ),
        ("", "slowest write + fdatasync of the receiver (median of the runs)", f"{flush:.0f} ms", ""),
        ("", f"machine's {busy} at the end", "", ""),
        (
            "",
            "**every acknowledged delivery in the capture**",
            f"**{held.captured:,} of {held.acknowledged:,}**",
            "",
        ),
        (
            f"webhook receiver killed -9 after 3 s of {rate:,.0f} deliveries/s (each run)",
            "**acknowledged deliveries in the capture**",
            "**" + ", ".join(f"{load.captured:,} of {load.acknowledged:,}" for load in killed) + "**",
            "",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=1000, help="deliveries offered a second (sustained load)"
    )
    parser.add_argument("--seconds", type=float, default=10, help="how long each load lasts")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each load (median)")
    args = parser.parse_args()
    for row in scenarios(args.repeat, args.rate, args.seconds):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
