"""Gratuitous ARP and unsolicited neighbour advertisement over AF_PACKET.

Frames are built with `struct` so the daemon never imports scapy. Both ARP
forms (request and reply) are sent: hosts and switches differ in which one
they honour for updating an existing entry. `Announcer` schedules them for
one instance.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from typing import TYPE_CHECKING, Protocol

from vrrp.codec import inet_checksum
from vrrp.counters import Counters

if TYPE_CHECKING:
    from director.config.model import GarpConfig

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


class Target(Protocol):
    """What an announcement needs from its instance, read afresh each round: a
    reload may change the VIPs or the timing, a link event the MAC."""

    @property
    def garp(self) -> GarpConfig: ...

    @property
    def is_master(self) -> bool: ...

    @property
    def counters(self) -> Counters: ...

    def garp_frames(self) -> list[bytes]: ...


class Announcer:
    """One instance's announcements: a burst on each new mastership (a round at once,
    then the configured repeats) and a second burst `delay` later, and an optional
    periodic refresh while master."""

    def __init__(self, sender: PacketSender) -> None:
        self.sender = sender
        self._burst: asyncio.Task | None = None
        self._refresh: asyncio.Task | None = None

    def start(self, loop: asyncio.AbstractEventLoop, target: Target, lower_prio: bool = False) -> None:
        """The VIPs were added just before, synchronously, so the first round goes
        now; a new burst replaces a running one (and its second burst)."""
        self.cancel(refresh=False)
        garp = target.garp
        repeat, delay = garp.repeat, garp.delay
        if lower_prio:
            repeat = garp.repeat if garp.lower_prio_repeat is None else garp.lower_prio_repeat
            delay = garp.delay if garp.lower_prio_delay is None else garp.lower_prio_delay
        if lower_prio and repeat == 0:
            return  # told not to
        repeat = max(1, repeat)  # 0 and 1 both send a single round on becoming master
        self.round(target)
        self._burst = loop.create_task(self._bursts(target, repeat, delay))
        if target.garp.refresh > 0 and self._refresh is None:
            self._refresh = loop.create_task(self._keep_fresh(target))

    def round(self, target: Target) -> None:
        counters = target.counters
        for frame in target.garp_frames():
            try:
                self.sender.send(frame)
                counters.garps_sent += 1
            except OSError:
                counters.send_errors += 1

    def cancel(self, refresh: bool) -> None:
        """Stop the running burst, and with `refresh` the periodic refresh too."""
        if self._burst is not None:
            self._burst.cancel()
            self._burst = None
        if refresh and self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None

    def close(self) -> None:
        self.cancel(refresh=True)
        self.sender.close()

    async def _bursts(self, target: Target, repeat: int, delay: float) -> None:
        second = asyncio.get_running_loop().time() + delay  # counted from the first round
        await self._rounds(target, repeat - 1)
        if delay > 0:
            await asyncio.sleep(second - asyncio.get_running_loop().time())
            if target.is_master:
                self.round(target)
                await self._rounds(target, repeat - 1)

    async def _rounds(self, target: Target, count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(target.garp.interval)
            if not target.is_master:
                return
            self.round(target)

    async def _keep_fresh(self, target: Target) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while target.garp.refresh > 0:  # a reload may turn it off
            due += target.garp.refresh  # a steady period, whatever the rounds took
            await asyncio.sleep(due - loop.time())
            if target.is_master:
                self.round(target)
                await self._rounds(target, target.garp.refresh_repeat - 1)
