"""A /metrics scrape storm: 64 concurrent scrapers against the daemon at 5,000 real servers.

    .venv/bin/python -m benchmarks.metrics_scrape [--real-servers 5000] [--scrapers 64] [--seconds 5]

Runs a real `Daemon` in this process (in-memory IPVS backend, checks of type none, the
config `benchmarks.daemon_bench` builds) with a stand-in VRRP child that counts the
snapshots asked of it; the scrapers run in a second process (plain HTTP/1.1 over
loopback, each body read to the end and checked against its Content-Length), so their
work does not count against the daemon's loop.

Figures:
- rss: the daemon's RSS after a first reconcile and one scrape, its peak during the
  storm (VmHWM, reset before it) and the growth;
- scrapes/s completed whole, and those answered 503 (over the connection cap) or cut short;
- event-loop lag p50/p99/max: how late a 10 ms sleep on the daemon's loop wakes up;
- renders of the exposition and VRRP snapshots asked for during the storm.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.daemon_bench import config_text

SLEEP = 0.01


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class StandInVrrp:
    """What the views read of the VRRP child, counting the snapshots asked for."""

    def __init__(self) -> None:
        self.asked = 0
        self._snapshot = {"instances": {"VI_1": {
            "interface": "eth0", "vrid": 7, "state": "master", "priority": 200, "effective_priority": 200,
            "transitions": 1, "adverts_sent": 0, "adverts_received": 0, "garps_sent": 5, "answers_suppressed": 0,
            "errors": {}}}, "unmatched_errors": {}}

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot

    async def fresh_snapshot(self) -> dict[str, Any]:
        self.asked += 1
        await asyncio.sleep(0.0005)  # the round trip to the child
        return self._snapshot


async def scrape(port: int) -> tuple[str, int]:
    """One GET: ("ok" | "503" | "short" | "error", body bytes)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            writer.close()
            return ("503" if head.startswith(b"HTTP/1.1 503") else "error"), 0
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        got = 0
        while chunk := await reader.read(1 << 20):
            got += len(chunk)
        writer.close()
        return ("ok" if got == length else "short"), got
    except (OSError, asyncio.IncompleteReadError, StopIteration):
        return "error", 0


def scrapers(port: int, count: int, seconds: float) -> None:
    """The scraper process: `count` loops scraping for `seconds`; prints what they got."""
    import uvloop

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        outcomes: dict[str, int] = {}
        sizes: list[int] = []

        async def one() -> None:
            while loop.time() < deadline:
                outcome, size = await scrape(port)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if outcome == "ok":
                    sizes.append(size)
                else:
                    await asyncio.sleep(0.01)

        began = loop.time()
        await asyncio.gather(*(one() for _ in range(count)), asyncio.sleep(seconds if not count else 0))
        return {"outcomes": outcomes, "elapsed": loop.time() - began,
                "body_mb": round(statistics.median(sizes) / 1e6, 1) if sizes else 0}

    print(json.dumps(uvloop.run(main())))


async def storm(real_servers: int, count: int, seconds: float) -> dict[str, Any]:
    from director import logs
    from director.config.load import load_config
    from director.daemon.daemon import Daemon
    from director.ipvs.memory import MemoryIpvs

    logs.configure("warning", fmt="json")
    workdir = Path(tempfile.mkdtemp(prefix="metrics-scrape-"))
    port = free_port()
    path = workdir / "directord.toml"
    path.write_text(config_text(real_servers, workdir, "none").replace("127.0.0.1:9612", f"127.0.0.1:{port}"))
    daemon = Daemon(load_config(str(path)), MemoryIpvs())
    gc.collect()
    gc.freeze()  # as `directord run` does before it forks the VRRP child (VrrpProcess.fork)
    vrrp = daemon.views._vrrp = StandInVrrp()  # type: ignore[assignment]  # the views' VRRP source
    running = asyncio.create_task(daemon.run())
    while daemon.reconciler.counters.passes < 1 or daemon.metrics_server is None:
        await asyncio.sleep(0.1)
    server = daemon.metrics_server
    renders = 0
    exposition = server.exposition

    async def counted() -> Any:
        nonlocal renders
        renders += 1
        return await exposition()

    server.exposition = counted
    outcome, _ = await scrape(port)  # warm: label strings built once per config
    assert outcome == "ok", outcome
    await asyncio.sleep(1)
    rss_before = status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    renders, vrrp.asked = 0, 0

    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()

    async def lag() -> None:
        while not stop.is_set():
            began = loop.time()
            await asyncio.sleep(SLEEP)
            lags.append(loop.time() - began - SLEEP)

    monitor = asyncio.create_task(lag())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.metrics_scrape", "--scrape", str(port), "--scrapers", str(count),
        "--seconds", str(seconds), stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    stop.set()
    await monitor
    got = json.loads(out)
    rss_peak = status_kb("VmHWM")
    lags.sort()
    daemon.stop.set()
    await asyncio.wait_for(running, 60)
    ok = got["outcomes"].get("ok", 0)
    return {
        "real_servers": real_servers, "scrapers": count, "seconds": round(got["elapsed"], 1),
        "body_mb": got["body_mb"],
        "rss_mb": f"{rss_before / 1024:.0f} -> {rss_peak / 1024:.0f} (+{(rss_peak - rss_before) / 1024:.0f})",
        "scrapes_per_s": round(ok / got["elapsed"], 1), "outcomes": got["outcomes"],
        "lag_ms_p50_p99_max": [round(lags[int(q * (len(lags) - 1))] * 1000, 1) for q in (0.5, 0.99, 1.0)],
        "renders": renders, "vrrp_snapshots": vrrp.asked,
        "code": os.path.dirname(os.path.dirname(sys.modules["director"].__file__ or "")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-servers", type=int, default=5000)
    parser.add_argument("--scrapers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scrape", type=int, help=argparse.SUPPRESS)  # the scraper process, on this port
    args = parser.parse_args()
    if args.scrape:
        scrapers(args.scrape, args.scrapers, args.seconds)
        return
    import uvloop

    began = time.monotonic()
    print(json.dumps(uvloop.run(storm(args.real_servers, args.scrapers, args.seconds))))
    print(f"(wall {time.monotonic() - began:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
