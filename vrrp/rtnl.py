"""Sans-IO rtnetlink codec for the few messages VRRP needs: links and addresses.

A VIP add is on the takeover path, so it is one small request built here and
sent straight from the event loop (`vrrp.addresses`), with no library and no
thread between the decision and the kernel. Layouts are the kernel's
`include/uapi/linux/rtnetlink.h`, `if_link.h` and `if_addr.h`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from nlmsg import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSGHDR,
    DecodeError,
    attr,
    iter_messages,
    parse_attrs,
)

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTMGRP_LINK = 0x1

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFLA_ADDRESS = 1
IFLA_IFNAME = 3

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40

IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_U32 = struct.Struct("=I")
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_FAMILY = {socket.AF_INET: 4, socket.AF_INET6: 6}


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    mac: bytes
    up: bool


@dataclass(frozen=True)
class AddressInfo:
    index: int
    address: IPAddress
    prefixlen: int
    flags: int  # IFA_F_*, from IFA_FLAGS when the kernel sends it (it has more bits)


def _request(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body


def link_request(seq: int, ifname: str) -> bytes:
    """RTM_GETLINK for one interface by name; the kernel answers ENODEV if it is absent."""
    return _request(RTM_GETLINK, NLM_F_ACK, seq,
                    IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, ifname.encode() + b"\0"))


def link_state_request(seq: int, ifindex: int, up: bool) -> bytes:
    """RTM_NEWLINK changing only IFF_UP of one interface: `ip link set DEV up|down`."""
    return _request(RTM_NEWLINK, NLM_F_ACK, seq,
                    IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, IFF_UP if up else 0, IFF_UP))


def address_dump_request(seq: int, family: int) -> bytes:
    """RTM_GETADDR dump of one family (4 or 6), every interface; 0 for both."""
    return _request(RTM_GETADDR, NLM_F_DUMP, seq, IFADDRMSG.pack(_AF.get(family, 0), 0, 0, 0, 0))


def address_request(seq: int, add: bool, ifindex: int, vip: IPInterface) -> bytes:
    """RTM_NEWADDR (exclusive create: EEXIST tells "already there") or RTM_DELADDR.

    IPv6 VIPs skip duplicate address detection, which would keep them tentative
    (unusable) for a second after every takeover.
    """
    flags = IFA_F_NODAD if vip.version == 6 and add else 0
    raw = vip.ip.packed
    body = IFADDRMSG.pack(_AF[vip.version], vip.network.prefixlen, flags, 0, ifindex)
    body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    if add:
        return _request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)
    return _request(RTM_DELADDR, NLM_F_ACK, seq, body)


def is_up(flags: int) -> bool:
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


def decode_link(payload: bytes | memoryview) -> LinkInfo:
    """An RTM_NEWLINK/DELLINK payload (after the netlink header)."""
    if len(payload) < IFINFOMSG.size:
        raise DecodeError("link message too short")
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(payload)
    attrs = parse_attrs(payload[IFINFOMSG.size :])
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    return LinkInfo(index, name, attrs.get(IFLA_ADDRESS, b"\0" * 6), is_up(flags))


def decode_address(payload: bytes | memoryview) -> AddressInfo | None:
    """An RTM_NEWADDR payload; None for a family other than IPv4/IPv6."""
    if len(payload) < IFADDRMSG.size:
        raise DecodeError("address message too short")
    family, prefixlen, flags, _scope, index = IFADDRMSG.unpack_from(payload)
    if family not in _FAMILY:
        return None
    attrs = parse_attrs(payload[IFADDRMSG.size :])
    # IPv4: IFA_LOCAL is our address (IFA_ADDRESS is the peer on point-to-point links).
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if raw is None or len(raw) != (4 if family == socket.AF_INET else 16):
        raise DecodeError("address message without a usable address")
    if len(attrs.get(IFA_FLAGS, b"")) == 4:
        flags = _U32.unpack(attrs[IFA_FLAGS])[0]
    return AddressInfo(index, ipaddress.ip_address(raw), prefixlen, flags)


def link_events(data: bytes | memoryview) -> Iterator[tuple[str, bool]]:
    """(ifname, up) for each link message in one multicast datagram; a deleted
    link reports down. A malformed datagram ends the list (the caller re-queries)."""
    try:
        for kind, _flags, _seq, payload in iter_messages(data):
            if kind in (RTM_NEWLINK, RTM_DELLINK):
                link = decode_link(payload)
                if link.name:
                    yield link.name, kind == RTM_NEWLINK and link.up
    except DecodeError:
        return
