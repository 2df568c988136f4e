"""IPVS connection-sync latency and cost, by sync packet size and connection rate.

A connection the backup director does not know yet breaks when the VIP moves. This
measures, for each new connection on the master, how long until the first sync
message naming it reaches the backup, and what that costs in packets:

- one packet per connection (`max_packet_size = 64`, directord's default), and
- the kernel's MTU-sized packets (`max_packet_size = 0`, keepalived's default).

Four namespaces on one bridge: a client, the master and backup directors (both with
the same DR service) and a real server. The master runs the kernel's master sync
thread; the backup runs the backup thread (largest receive size) and a sniffer that
joins the sync group and stamps every sync packet on arrival. The client opens
connections at a fixed rate, each sending a request (the 3rd packet, when the kernel
syncs an established connection) and reading the reply. Latency = sync packet
arrival - request sent, both CLOCK_REALTIME in one kernel.

Needs IPVS and ipvsadm: run it in the VM.

    scripts/vm-run -- .venv/bin/python -m benchmarks.sync_latency [--rates 5,25,200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from director.config.model import SYNC_PACKET_ONE_CONNECTION
from director.sync.wire import decode
from scripts.labkit import PYTHON, REPO, Lab, add_sync_service, build_sync_pair, sh
from scripts.labkit import SYNC_ADDR as ADDR
from scripts.labkit import SYNC_PORT as PORT
from scripts.labkit import SYNC_VIP as VIP

SYNCID = 9
GROUP, SYNC_PORT = "224.0.0.81", 8848
SETTLE = 4.0  # seconds after the last connection: the kernel flushes a partial packet within 3 s
SIZES = {"one per packet (64)": SYNC_PACKET_ONE_CONNECTION, "kernel MTU (0)": 0}

SERVER = """
import asyncio, sys
async def serve(reader, writer):
    await reader.read(100)
    writer.write(b"ok\\n")
    await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

CLIENT = """
import asyncio, json, sys, time
rate, seconds, vip, port = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sent = {}
async def one():
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), 2)
        writer.write(b"GET\\n")
        sent[writer.get_extra_info("sockname")[1]] = time.time()
        await asyncio.wait_for(reader.read(100), 2)
        writer.close()
    except (OSError, asyncio.TimeoutError):
        pass
async def main():
    start, tasks = time.monotonic(), []
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    print(json.dumps(sent))
asyncio.run(main())
"""

SNIFFER = """
import json, socket, sys, threading, time
from vrrp.sockets import SO_TIMESTAMPNS, kernel_stamp
group, port, ifaddr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: a busy emulated CPU must not drop any
s.bind((group, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(ifaddr))
s.settimeout(0.2)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
out = []
while not done.is_set():
    try:
        data, anc, _flags, _addr = s.recvmsg(65535, 64)
    except TimeoutError:
        continue
    stamp = kernel_stamp(anc)
    out.append([time.time() if stamp is None else stamp, data.hex()])
print(json.dumps(out))
"""


def build(lab: Lab) -> dict[str, str]:
    ns = build_sync_pair(lab, SYNCID)
    server = lab.start([PYTHON, "-c", SERVER, str(PORT)], ns=ns["server"], stdout=subprocess.PIPE, text=True,
                       cwd=REPO)
    if server.stdout is None or server.stdout.readline().strip() != "ready":
        raise RuntimeError("the real server did not start")
    return ns


def measure(lab: Lab, ns: dict[str, str], size: int, rate: float, seconds: float) -> dict[str, float]:
    sh(["ipvsadm", "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", str(SYNCID)]
       + (["--sync-maxlen", str(size)] if size else []), ns=ns["master"])
    try:
        sniffer = lab.start([PYTHON, "-c", SNIFFER, GROUP, str(SYNC_PORT), ADDR["backup"]], ns=ns["backup"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        if sniffer.stdout is None or sniffer.stdout.readline().strip() != "ready":
            raise RuntimeError("the sniffer did not start")
        client = sh([PYTHON, "-c", CLIENT, str(rate), str(seconds), VIP, str(PORT)], ns=ns["client"],
                    timeout=seconds * 3 + 30)
        sent: dict[str, float] = json.loads(client)
        time.sleep(SETTLE)  # the last partial packet leaves within 3 s
        packets = json.loads(sniffer.communicate(input="", timeout=60)[0])
    finally:
        sh(["ipvsadm", "--stop-daemon", "master"], ns=ns["master"])
        sh(["ipvsadm", "-C"], ns=ns["master"])  # the next size starts from an empty connection table
        add_sync_service(ns["master"])
    first_seen: dict[int, float] = {}
    messages = 0
    for at, data in packets:
        conns = decode(bytes.fromhex(data))[1]
        messages += len(conns)
        for conn in conns:
            first_seen.setdefault(conn.client_port, at)
    latencies = sorted(first_seen[int(port)] - t for port, t in sent.items() if int(port) in first_seen)
    return {
        "connections": len(sent),
        "unsynced": len(sent) - len(latencies),
        "median_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p90_ms": latencies[int(0.9 * (len(latencies) - 1))] * 1000 if latencies else float("nan"),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "packets_per_conn": len(packets) / max(1, len(sent)),
        "messages_per_packet": messages / max(1, len(packets)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5,25,200", help="new connections per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per measurement")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    if not Path("/proc/net/ip_vs").exists():
        subprocess.run(["modprobe", "ip_vs"], check=False)
    results = []
    Lab.sweep("bsl-")
    with Lab("bsl-") as lab:
        ns = build(lab)
        for rate in rates:
            for label, size in SIZES.items():
                figures = measure(lab, ns, size, rate, args.seconds)
                results.append({"rate": rate, "packet": label, **figures})
                print(f"{rate:>6g}/s  {label:<20} sync latency median {figures['median_ms']:7.1f} ms  "
                      f"p90 {figures['p90_ms']:7.1f} ms  max {figures['max_ms']:7.1f} ms  "
                      f"never seen {figures['unsynced']}/{figures['connections']}  "
                      f"{figures['packets_per_conn']:.2f} packets/connection  "
                      f"{figures['messages_per_packet']:.1f} messages/packet", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
