"""VIPs over netlink (pyroute2) and interface link state from netlink events.

Adds are idempotent (EEXIST is success) and removes tolerate an address that
is already gone, so a restart adopts whatever the previous run left behind.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_IFNAME = 3
NETLINK_BUF = 65536


@dataclass(frozen=True)
class LinkInfo:
    index: int
    mac: bytes
    up: bool


class AddressManager:
    """Owns one rtnetlink socket for address work and link queries."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def link(self, ifname: str) -> LinkInfo | None:
        idx = self.ipr.link_lookup(ifname=ifname)
        if not idx:
            return None
        msg = self.ipr.get_links(idx[0])[0]
        mac = bytes.fromhex((msg.get("IFLA_ADDRESS") or "00:00:00:00:00:00").replace(":", ""))
        return LinkInfo(idx[0], mac, _is_up(msg["flags"]))

    def primary_address(
        self, ifindex: int, family: int, exclude: set[IPAddress]
    ) -> IPAddress | None:
        """Our own address to advertise from: IPv4 primary, or IPv6 link-local."""
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        for msg in self.ipr.get_addr(index=ifindex, family=af):
            addr = ipaddress.ip_address(msg.get("IFA_ADDRESS"))
            flags = msg.get("IFA_FLAGS") or msg["flags"]
            if addr in exclude or flags & IFA_F_TENTATIVE:
                continue
            if family == 4 and not flags & IFA_F_SECONDARY:
                return addr
            if family == 6 and addr.is_link_local:
                return addr
        return None

    def add(self, ifindex: int, vip: IPInterface) -> bool:
        """Add a VIP with its prefix; True when it was not there before."""
        kw = {"flags": IFA_F_NODAD} if vip.version == 6 else {}
        try:
            self.ipr.addr(
                "add", index=ifindex, address=str(vip.ip), prefixlen=vip.network.prefixlen, **kw
            )
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                return False
            raise
        return True

    def remove(self, ifindex: int, vip: IPInterface) -> bool:
        """Remove a VIP; True when it was there."""
        try:
            self.ipr.addr(
                "del", index=ifindex, address=str(vip.ip), prefixlen=vip.network.prefixlen
            )
        except NetlinkError as exc:
            if exc.code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


def _is_up(flags: int) -> bool:
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


class LinkMonitor:
    """A plain rtnetlink socket subscribed to link events, read without blocking.

    Parsing is a few struct calls, which keeps the event path free of any
    library threads and lets asyncio watch the file descriptor directly.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.setblocking(False)
        self.sock.bind((0, RTMGRP_LINK))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def read(self) -> list[tuple[str, bool]]:
        """Pending (ifname, up) events; a deleted link reports down."""
        events: list[tuple[str, bool]] = []
        while True:
            try:
                data = self.sock.recv(NETLINK_BUF)
            except BlockingIOError:
                return events
            except OSError:  # ENOBUFS: events lost; the caller re-queries
                events.append(("", False))
                return events
            events.extend(parse_link_messages(data))


def parse_link_messages(data: bytes) -> Iterator[tuple[str, bool]]:
    """Decode RTM_NEWLINK/DELLINK messages in one netlink datagram."""
    off = 0
    while off + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, off)
        if length < 16 or off + length > len(data):
            return
        if mtype in (RTM_NEWLINK, RTM_DELLINK) and length >= 32:
            flags = struct.unpack_from("=I", data, off + 24)[0]
            name = _attr_ifname(data[off + 32 : off + length])
            if name:
                yield name, mtype == RTM_NEWLINK and _is_up(flags)
        off += (length + 3) & ~3


def _attr_ifname(attrs: bytes) -> str | None:
    off = 0
    while off + 4 <= len(attrs):
        alen, atype = struct.unpack_from("=HH", attrs, off)
        if alen < 4:
            return None
        if atype == IFLA_IFNAME:
            return attrs[off + 4 : off + alen].split(b"\0", 1)[0].decode(errors="replace")
        off += (alen + 3) & ~3
    return None
