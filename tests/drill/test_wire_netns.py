"""The client-side wire capture in namespaces: the kernel's receive stamp lands between the
send's before and after on the drill's clock, whatever the reader's lag, and the kernel filter
passes only ARP and VRRP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from scripts.labkit import REPO, Lab

VIP = "198.51.100.10"
MAC = "02:00:00:00:00:01"


@pytest.fixture
def wire_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair: `va` in the first, `vb` in the second."""
    with Lab("dtw") as lab:
        a, b = lab.netns("a"), lab.netns("b")
        lab.veth(a, "va", None, bridge_ns=b, peer="vb")
        yield a, b


def test_kernel_stamp_is_the_arrival_not_the_read(wire_pair: tuple[str, str]) -> None:
    a, b = wire_pair
    cap = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-m", "director.drill.wire",
                            "--ifname", "vb", "--vip", VIP], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert cap.stdout is not None
    assert json.loads(cap.stdout.readline()) == {"kind": "ready"}
    cap.send_signal(19)  # SIGSTOP: the reader cannot run when the frame arrives
    sender = subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, "-c", SEND], capture_output=True, text=True, cwd=REPO,
        check=True)
    before, after, mac = sender.stdout.split()
    time.sleep(0.5)
    cap.send_signal(18)  # SIGCONT, half a second late
    got = json.loads(cap.stdout.readline())
    cap.kill()
    cap.wait()
    assert got["kind"] == "garp" and got["mac"] == mac
    assert float(before) <= got["t"] <= float(after)


# The sender uses the daemon's own frame builder, in the other namespace.
SEND = f"""
import ipaddress, socket, time
from vrrp.garp import arp_frame
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
sock.bind(("va", 0))
mac = open("/sys/class/net/va/address").read().strip()
before = time.time()
sock.send(arp_frame(bytes.fromhex(mac.replace(":", "")), ipaddress.IPv4Address("{VIP}"), False))
print(before, time.time(), mac)
"""


def test_the_kernel_filter_passes_only_arp_and_vrrp(wire_pair: tuple[str, str]) -> None:
    """The load's own traffic is dropped in the kernel: the capture reads ARP and VRRP only."""
    a, b = wire_pair
    receiver = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", RECEIVE], stdout=subprocess.PIPE,
                                text=True, cwd=REPO)
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", SEND_MIXED], check=True, cwd=REPO)
    seen = receiver.stdout.read().split()
    receiver.wait(timeout=10)
    assert seen == ["arp", "vrrp"]


RECEIVE = """
import socket
from director.drill.wire import open_socket
sock = open_socket("vb")
sock.settimeout(1.5)
print("ready", flush=True)
try:
    while True:
        frame = sock.recv(2048)
        kind = frame[12:14].hex()
        vrrp = kind == "0800" and frame[23] == 112
        print("arp" if kind == "0806" else "vrrp" if vrrp else kind + ":" + str(frame[23]))
except TimeoutError:
    pass
"""

SEND_MIXED = f"""
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRPv3
from scapy.sendrecv import sendp
mac = "{MAC}"
frames = [Ether(src=mac) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53),
          Ether(src=mac) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80),
          Ether(src=mac) / IPv6(src="fd00::1", dst="fd00::2") / UDP(dport=53),
          Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc="{VIP}", pdst="{VIP}"),
          Ether(src=mac, dst="01:00:5e:00:00:12") / IP(src="10.0.0.1", dst="224.0.0.18", ttl=255) /
          VRRPv3(vrid=51, priority=150, ipcount=1, addrlist=["{VIP}"])]
sendp(frames, iface="va", verbose=False)
"""
