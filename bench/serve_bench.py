"""Throughput of ``sequencer serve`` with events durable (SPEC 10 door 1), against a floor
measured in the same run: the same server's ``/healthz`` (no token, no event, no fsync).

    .venv/bin/python bench/serve_bench.py [--requests 6000] [--concurrency 32]

Starts the real server (uvicorn, its own process) on 127.0.0.1, pre-signs distinct tokens (a
third opens, a third clicks, a third one-click unsubscribes), and drives it with a minimal
keep-alive HTTP/1.1 client on raw asyncio sockets (httpx would be the bottleneck on 2 cores).
Bounded: a fixed number of requests to 127.0.0.1 only. Checks afterwards that every answered
event is in the spool, then prints requests/s, latency percentiles and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.channels.tracking import EPOCH_DAY, Tracker

SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_for(n: int) -> list[bytes]:
    day = int(time.time()) // EPOCH_DAY
    out = []
    for i in range(n):
        t = Tracker("", SECRET.encode(), f"c{i}", f"<m{i}@bench>", "bench", "e1", day)
        if i % 3 == 0:
            out.append(f"GET {t.open_url()} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        elif i % 3 == 1:
            url = t.click_url(f"https://example.com/p/{i}")
            out.append(f"GET {url} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        else:
            body = b"List-Unsubscribe=One-Click"
            head = (
                f"POST {t.unsubscribe_url()} HTTP/1.1\r\nHost: b\r\nContent-Type: "
                f"application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            out.append(head.encode() + body)
    return out


async def drive(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list, int]:
    """Send every request over ``concurrency`` keep-alive connections; (seconds, latencies,
    answers with a 2xx/3xx status)."""
    queue = iter(requests)
    latencies: list[float] = []
    ok = 0

    async def connection() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in queue:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            ok += status_line.split()[1][:1] in (b"2", b"3")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, ok


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "users.yaml").write_text(
            'tracking: {base_url: "https://t.example", secret_env: TRACKING_SECRET}\n'
        )
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", "--project", str(root),
             "--port", str(port)],
            env={**os.environ, "TRACKING_SECRET": SECRET}, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            health = [b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n"] * args.requests
            events = requests_for(args.requests)
            asyncio.run(drive(port, health[:500], args.concurrency))  # warm up
            floor_s, floor_lat, _ = asyncio.run(drive(port, health, args.concurrency))
            event_s, event_lat, ok = asyncio.run(drive(port, events, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        spooled = sum(
            p.read_bytes().count(b"\n") for p in (root / "imports/events").glob("*.jsonl")
        )
    n = args.requests
    print(f"requests: {n} per mode, {args.concurrency} keep-alive connections, 127.0.0.1")
    print(
        f"floor  /healthz            {n / floor_s:8.0f} req/s   p50 {pct(floor_lat, 0.5):6.1f} ms"
        f"   p99 {pct(floor_lat, 0.99):6.1f} ms"
    )
    print(
        f"events (fsynced, durable)  {n / event_s:8.0f} req/s   p50 {pct(event_lat, 0.5):6.1f} ms"
        f"   p99 {pct(event_lat, 0.99):6.1f} ms"
    )
    print(f"ratio events/floor time: {event_s / floor_s:.2f}x")
    print(f"answered {ok} of {n}; events in the spool: {spooled} (must equal answered)")
    if spooled != ok:
        raise SystemExit("an answered event is missing from the spool")


if __name__ == "__main__":
    main()
