"""Announcements on the wire: a new master's burst and its second burst `delay` later, and
the burst with which a master outshouts a rival of lower priority (split brain healing),
each with its own repeat, seen from a client's port."""

from __future__ import annotations

import subprocess
import time

from scripts.labkit import PYTHON, VIP, sh
from scripts.labkit import VrrpLab as Lab

# Prints the time (monotonic) of every ARP frame from MAC argv[1] announcing argv[2], for argv[3] s.
SNIFF_ARP = r"""
import select, socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
sock.bind(("eth0", 0))
mac, ip = bytes.fromhex(sys.argv[1].replace(":", "")), socket.inet_aton(sys.argv[2])
end = time.monotonic() + float(sys.argv[3])
print("ready", flush=True)
while time.monotonic() < end:
    if select.select([sock], [], [], 0.05)[0]:
        frame = sock.recv(256)
        if frame[6:12] == mac and frame[28:32] == ip:
            print(time.monotonic(), flush=True)
"""
GARP = {"repeat": 2, "interval": "50ms", "delay": "1s", "lower_prio_repeat": 3, "lower_prio_delay": "0s"}


def rounds(stamps: list[float]) -> list[float]:
    """The start of each round: a round is the request and the reply for the VIP, at once."""
    starts: list[float] = []
    for stamp in stamps:
        if not starts or stamp - starts[-1] > 0.02:
            starts.append(stamp)
    return starts


def test_bursts_second_burst_and_a_rivals_burst(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    sniffer = subprocess.Popen(["ip", "netns", "exec", lab2.client, PYTHON, "-c", SNIFF_ARP, lab2.mac(n1), VIP, "4"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        lab2.start(n1, priority=200, garp=GARP)
        lab2.wait_master(n1)
        time.sleep(1.5)  # the second burst
        # n2 no longer hears n1: it becomes master too, and its adverts (priority 100) reach n1
        sh(["nft", "add table inet cut; add chain inet cut in { type filter hook input priority 0; }; "
                   f"add rule inet cut in ip saddr {lab2.addr(1)} ip protocol vrrp drop"], ns=n2)
        rival = time.monotonic()
        lab2.start(n2, priority=100, garp={"repeat": 1, "delay": "0s"})
        stamps = [float(line) for line in sniffer.communicate(timeout=10)[0].split()]
    finally:
        sniffer.kill()
        sniffer.wait()
    starts = rounds(stamps)
    first = [s - starts[0] for s in starts if s < rival]
    assert len(first) == 4, (first, lab2.all_logs())
    assert first[1] - first[0] < 0.1 and 0.9 < first[2] < 1.15 and first[3] - first[2] < 0.1, first
    later = [s - rival for s in starts if s >= rival]
    assert len(later) >= 3 and later[2] - later[0] < 0.2, (later, lab2.all_logs())  # three rounds, 50 ms apart
