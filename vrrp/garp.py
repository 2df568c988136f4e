"""Gratuitous ARP and unsolicited neighbour advertisement over AF_PACKET.

Frames are built with `struct` so the daemon never imports scapy. Both ARP
forms (request and reply) are sent: hosts and switches differ in which one
they honour for updating an existing entry.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from vrrp.codec import inet_checksum

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"


def arp_frame(mac: bytes, ip: ipaddress.IPv4Address, reply: bool) -> bytes:
    """A broadcast ARP announcing that `ip` lives at `mac` (sender == target IP)."""
    op = 2 if reply else 1
    target_mac = mac if reply else bytes(6)
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + ip.packed + target_mac + ip.packed
    return eth + arp


def unsolicited_na_frame(
    mac: bytes, src: ipaddress.IPv6Address, target: ipaddress.IPv6Address
) -> bytes:
    """An unsolicited Neighbour Advertisement (RFC 4861 7.2.6) with the override flag."""
    flags = 0x20000000  # O (override); not a router, not solicited
    icmp = struct.pack("!BBHI", 136, 0, 0, flags) + target.packed
    icmp += struct.pack("!BB", 2, 1) + mac  # target link-layer address option
    pseudo = src.packed + ALL_NODES.packed + struct.pack("!I3xB", len(icmp), 58)
    csum = inet_checksum(pseudo + icmp)
    icmp = icmp[:2] + struct.pack("!H", csum) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + src.packed + ALL_NODES.packed
    return ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6) + ip6 + icmp


def frames_for(
    mac: bytes,
    vips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    src6: ipaddress.IPv6Address | None,
) -> list[bytes]:
    """All frames of one announcement round for the given VIPs."""
    out: list[bytes] = []
    for vip in vips:
        if vip.version == 4:
            out += [arp_frame(mac, vip, False), arp_frame(mac, vip, True)]
        elif src6 is not None:
            out.append(unsolicited_na_frame(mac, src6, vip))
    return out


class PacketSender:
    """An AF_PACKET socket bound to one interface, used only to send."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.setblocking(False)
        self.sock.bind((ifname, 0))

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def close(self) -> None:
        self.sock.close()
