"""The chaos soak's hands on the LAN, run once inside the lab's client namespace.

    ip netns exec CLIENT python -m benchmarks.chaos_client

One process for the whole soak (scapy loads once): it prints `ready`, then reads one JSON
command a line from stdin and answers each with one JSON line.

    {"do": "spoof", "vip": "198.51.100.10", "vrid": 51}   forged adverts, then a priority-0 flood
    {"do": "storm", "url": "http://198.51.100.11:9100/metrics", "clients": 64, "seconds": 3}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

REPLY_LIMIT = 16 << 20  # a scrape body larger than this is an error of its own
FORGED_ADDRESS = "198.51.100.9"  # not the VIP: keepalived's default check drops such adverts


def spoof(vip: str, vrid: int, ifname: str = "eth0") -> dict[str, Any]:
    """Issue 17's attack (priority 255, a 40.95 s interval) without our address list, then a
    flood of priority-0 adverts with it: neither may move the VIP."""
    from scapy.all import IP, VRRPv3, send  # type: ignore[import-untyped]

    takeover = IP(dst="224.0.0.18", ttl=255) / VRRPv3(vrid=vrid, priority=255, adv=4095, addrlist=[FORGED_ADDRESS])
    resign = IP(dst="224.0.0.18", ttl=255) / VRRPv3(vrid=vrid, priority=0, adv=25, addrlist=[vip])
    send(takeover, iface=ifname, count=3, inter=0.05, verbose=False)
    send(resign, iface=ifname, count=100, inter=0, verbose=False)
    return {"forged": 3, "priority_0": 100}


async def scrape(url: str, deadline: float, tally: Counter[str]) -> None:
    parts = urlsplit(url)
    request = f"GET {parts.path} HTTP/1.0\r\nHost: {parts.hostname}\r\n\r\n".encode()
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 5)
            try:
                writer.write(request)
                head = await asyncio.wait_for(reader.readline(), 10)
                body = await asyncio.wait_for(reader.read(REPLY_LIMIT), 30)
            finally:
                writer.close()
            status = head.split(b" ")[1].decode() if head.count(b" ") >= 2 else "bad"
            tally[status if body or status != "200" else "empty"] += 1
        except (OSError, TimeoutError) as exc:
            tally[type(exc).__name__] += 1
            await asyncio.sleep(0.05)


async def storm(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` scrapers, each on a new connection after the last reply, for `seconds`."""
    tally: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(scrape(url, deadline, tally) for _ in range(clients)))
    return dict(tally)


def answer(command: dict[str, Any]) -> dict[str, Any]:
    if command.get("do") == "spoof":
        return spoof(command["vip"], int(command["vrid"]))
    if command.get("do") == "storm":
        return asyncio.run(storm(command["url"], int(command["clients"]), float(command["seconds"])))
    return {"error": f"unknown command {command.get('do')!r}"}


def main() -> None:
    import scapy.all  # noqa: F401  (loaded before `ready`: a fault must not wait for it)

    print("ready", flush=True)
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except Exception as exc:  # reported to the soak, which counts it as the fault's problem
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
