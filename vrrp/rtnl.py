"""Sans-IO rtnetlink codec for the few messages VRRP needs: links, addresses, routes and rules.

A VIP add is on the takeover path, so it is one small request built here and
sent straight from the event loop (`vrrp.addresses`), with no library and no
thread between the decision and the kernel. So are the routes and policy rules
an instance carries with mastership. Layouts are the kernel's
`include/uapi/linux/rtnetlink.h`, `if_link.h`, `if_addr.h` and `fib_rules.h`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from nlmsg import (
    NLA_F_NESTED,
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
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTMGRP_LINK = 0x1

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_LINK = 5
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_AF_SPEC = 26
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_MACVLAN_MODE = 1
MACVLAN_MODE_PRIVATE = 1
IFLA_INET6_ADDR_GEN_MODE = 8
IN6_ADDR_GEN_MODE_NONE = 1

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_FLAGS = 8
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
IFA_F_NOPREFIXROUTE = 0x200  # beyond ifa_flags' 8 bits: sent in IFA_FLAGS

# Scopes of addresses and routes by the names `ip` gives them (RT_SCOPE_*).
RT_SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254

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
    link: int = 0  # IFLA_LINK: the parent of a macvlan or VLAN; 0 for none
    kind: str = ""  # IFLA_INFO_KIND: "macvlan", "veth", ...; "" for a physical device
    alias: str = ""  # IFLA_IFALIAS


@dataclass(frozen=True)
class AddressInfo:
    index: int
    address: IPAddress
    prefixlen: int
    flags: int  # IFA_F_*, from IFA_FLAGS when the kernel sends it (it has more bits)
    scope: int = 0
    label: str = ""  # IPv4 only
    broadcast: IPAddress | None = None


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


def macvlan_request(seq: int, ifname: str, parent: int, mac: bytes) -> bytes:
    """RTM_NEWLINK creating a private-mode macvlan with its own MAC, down (exclusive create:
    EEXIST tells "already there"): `ip link add link PARENT name IFNAME address MAC type
    macvlan mode private`. It is created down, so `link_settings_request` can come first:
    the kernel makes the IPv6 link-local address when the link goes up."""
    data = attr(IFLA_MACVLAN_MODE, _U32.pack(MACVLAN_MODE_PRIVATE))
    info = attr(IFLA_INFO_KIND, b"macvlan") + attr(IFLA_INFO_DATA | NLA_F_NESTED, data)
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    body += attr(IFLA_IFNAME, ifname.encode() + b"\0") + attr(IFLA_LINK, _U32.pack(parent))
    body += attr(IFLA_ADDRESS, mac) + attr(IFLA_LINKINFO | NLA_F_NESTED, info)
    return _request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def link_settings_request(seq: int, ifindex: int, *, alias: str | None = None, addrgen_none: bool = False) -> bytes:
    """RTM_NEWLINK changing an existing link (the kernel takes these only there, not on create):
    `ip link set DEV alias ALIAS addrgenmode none`. A link without IPv6 address generation has no
    link-local address, so it sends no DAD or router solicitation of its own."""
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0)  # change 0: the flags stay
    if alias is not None:
        body += attr(IFLA_IFALIAS, alias.encode())
    if addrgen_none:
        inet6 = attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))
        body += attr(IFLA_AF_SPEC | NLA_F_NESTED, attr(socket.AF_INET6 | NLA_F_NESTED, inet6))
    return _request(RTM_NEWLINK, NLM_F_ACK, seq, body)


def link_delete_request(seq: int, ifindex: int) -> bytes:
    """RTM_DELLINK of one interface by index: `ip link del DEV`."""
    return _request(RTM_DELLINK, NLM_F_ACK, seq, IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0))


def address_dump_request(seq: int, family: int) -> bytes:
    """RTM_GETADDR dump of one family (4 or 6), every interface; 0 for both."""
    return _request(RTM_GETADDR, NLM_F_DUMP, seq, IFADDRMSG.pack(_AF.get(family, 0), 0, 0, 0, 0))


def address_request(seq: int, add: bool, ifindex: int, vip: IPInterface, *, broadcast: IPAddress | None = None,
                    scope: int = 0, label: str = "", noprefixroute: bool = False) -> bytes:
    """RTM_NEWADDR (exclusive create: EEXIST tells "already there") or RTM_DELADDR.

    IPv6 VIPs skip duplicate address detection, which would keep them tentative
    (unusable) for a second after every takeover. A delete names the label too,
    so the kernel removes that address only if it still carries our label.
    """
    flags = (IFA_F_NODAD if vip.version == 6 and add else 0) | (IFA_F_NOPREFIXROUTE if noprefixroute and add else 0)
    raw = vip.ip.packed
    body = IFADDRMSG.pack(_AF[vip.version], vip.network.prefixlen, flags & 0xFF, scope if add else 0, ifindex)
    body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    if label:
        body += attr(IFA_LABEL, label.encode() + b"\0")
    if not add:
        return _request(RTM_DELADDR, NLM_F_ACK, seq, body)
    if broadcast is not None:
        body += attr(IFA_BROADCAST, broadcast.packed)
    if flags > 0xFF:
        body += attr(IFA_FLAGS, _U32.pack(flags))
    return _request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


# --- routes and policy rules ----------------------------------------------------------

RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, res1, res2, action, flags
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 6, 7, 15
FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_PRIORITY, FRA_FWMARK = 1, 2, 3, 6, 10
FRA_TABLE, FRA_FWMASK, FRA_OIFNAME, FRA_PROTOCOL = 15, 16, 17, 21
FR_ACT_TO_TBL = 1
RT_TABLE_MAIN = 254
# Route types by the names `ip route` gives them (RTN_*).
RTN_TYPES = {"unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5, "blackhole": 6,
             "unreachable": 7, "prohibit": 8, "throw": 9}
RTN_UNICAST, RTN_LOCAL = 1, 2
# The protocol directord's routes and rules carry, as keepalived's do: `ip route` shows
# "proto keepalived", and a delete naming it never removes a route or rule someone else added.
RTPROT_KEEPALIVED = 18


@dataclass(frozen=True)
class Route:
    """A route in the kernel's terms: what `route_request` sends and `decode_route` reads back."""

    dst: IPNetwork
    table: int = RT_TABLE_MAIN
    type: int = RTN_UNICAST
    scope: int = RT_SCOPE_UNIVERSE
    protocol: int = RTPROT_KEEPALIVED
    gateway: IPAddress | None = None
    oif: int = 0  # ifindex; 0: none
    prefsrc: IPAddress | None = None
    metric: int = 0  # 0: not sent (the kernel's default)


@dataclass(frozen=True)
class Rule:
    """A policy routing rule in the kernel's terms (`rule_request`, `decode_rule`)."""

    family: int  # 4 or 6
    table: int
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    priority: int | None = None  # None: the kernel picks one on add, and a delete matches any
    iifname: str = ""
    oifname: str = ""
    fwmark: int = 0
    fwmask: int | None = None  # None: not sent (all bits when fwmark is)
    protocol: int = RTPROT_KEEPALIVED


def route_request(seq: int, add: bool, route: Route) -> bytes:
    """RTM_NEWROUTE or RTM_DELROUTE of the same attributes, which the kernel matches before deleting.

    The add creates without NLM_F_EXCL, as keepalived does (`ip route prepend`): a route of
    another protocol to the same destination and metric stays, ours goes before it (IPv6: beside
    it, as equal-cost paths), and only the very same route answers EEXIST."""
    dst = route.dst
    body = RTMSG.pack(_AF[dst.version], dst.prefixlen, 0, 0, route.table if route.table < 256 else 0,
                      route.protocol, route.scope, route.type, 0)
    body += attr(RTA_TABLE, _U32.pack(route.table))
    if dst.prefixlen:
        body += attr(RTA_DST, dst.network_address.packed)
    if route.gateway is not None:
        body += attr(RTA_GATEWAY, route.gateway.packed)
    if route.oif:
        body += attr(RTA_OIF, _U32.pack(route.oif))
    if route.prefsrc is not None:
        body += attr(RTA_PREFSRC, route.prefsrc.packed)
    if route.metric:
        body += attr(RTA_PRIORITY, _U32.pack(route.metric))
    if add:
        return _request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE, seq, body)
    return _request(RTM_DELROUTE, NLM_F_ACK, seq, body)


def decode_route(payload: bytes | memoryview) -> Route | None:
    """An RTM_NEWROUTE payload; None for a family other than IPv4/IPv6."""
    if len(payload) < RTMSG.size:
        raise DecodeError("route message too short")
    family, dst_len, _src_len, _tos, table, protocol, scope, kind, _flags = RTMSG.unpack_from(payload)
    if family not in _FAMILY:
        return None
    attrs = parse_attrs(payload[RTMSG.size :])
    version = _FAMILY[family]
    dst = ipaddress.ip_network((_address(attrs.get(RTA_DST), version), dst_len))
    return Route(dst, _u32(attrs, RTA_TABLE, table), kind, scope, protocol, _maybe_address(attrs.get(RTA_GATEWAY)),
                 _u32(attrs, RTA_OIF, 0), _maybe_address(attrs.get(RTA_PREFSRC)), _u32(attrs, RTA_PRIORITY, 0))


def rule_request(seq: int, add: bool, rule: Rule) -> bytes:
    """RTM_NEWRULE (exclusive create) or RTM_DELRULE: `ip rule add|del ... table N`."""
    body = FIB_RULE_HDR.pack(_AF[rule.family], rule.dst.prefixlen if rule.dst else 0,
                             rule.src.prefixlen if rule.src else 0, 0, rule.table if rule.table < 256 else 0,
                             0, 0, FR_ACT_TO_TBL, 0)
    body += attr(FRA_TABLE, _U32.pack(rule.table))
    if rule.src is not None:
        body += attr(FRA_SRC, rule.src.network_address.packed)
    if rule.dst is not None:
        body += attr(FRA_DST, rule.dst.network_address.packed)
    if rule.priority is not None:
        body += attr(FRA_PRIORITY, _U32.pack(rule.priority))
    if rule.iifname:
        body += attr(FRA_IIFNAME, rule.iifname.encode() + b"\0")
    if rule.oifname:
        body += attr(FRA_OIFNAME, rule.oifname.encode() + b"\0")
    if rule.fwmark:
        body += attr(FRA_FWMARK, _U32.pack(rule.fwmark))
    if rule.fwmask is not None:
        body += attr(FRA_FWMASK, _U32.pack(rule.fwmask))
    body += attr(FRA_PROTOCOL, bytes([rule.protocol]))
    if add:
        return _request(RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)
    return _request(RTM_DELRULE, NLM_F_ACK, seq, body)


def decode_rule(payload: bytes | memoryview) -> Rule | None:
    """An RTM_NEWRULE payload; None for a family other than IPv4/IPv6."""
    if len(payload) < FIB_RULE_HDR.size:
        raise DecodeError("rule message too short")
    family, dst_len, src_len, _tos, table, _r1, _r2, _action, _flags = FIB_RULE_HDR.unpack_from(payload)
    if family not in _FAMILY:
        return None
    attrs = parse_attrs(payload[FIB_RULE_HDR.size :])
    version = _FAMILY[family]
    src = ipaddress.ip_network((_address(attrs[FRA_SRC], version), src_len)) if FRA_SRC in attrs else None
    dst = ipaddress.ip_network((_address(attrs[FRA_DST], version), dst_len)) if FRA_DST in attrs else None
    protocol = attrs.get(FRA_PROTOCOL, b"\0")
    return Rule(version, _u32(attrs, FRA_TABLE, table), src, dst,
                _u32(attrs, FRA_PRIORITY, 0) if FRA_PRIORITY in attrs else None,
                _text(attrs.get(FRA_IIFNAME, b"")), _text(attrs.get(FRA_OIFNAME, b"")), _u32(attrs, FRA_FWMARK, 0),
                _u32(attrs, FRA_FWMASK, 0) if FRA_FWMASK in attrs else None, protocol[0] if protocol else 0)


def route_dump_request(seq: int, family: int) -> bytes:
    """RTM_GETROUTE dump of one family (4 or 6), every table."""
    return _request(RTM_GETROUTE, NLM_F_DUMP, seq, RTMSG.pack(_AF[family], 0, 0, 0, 0, 0, 0, 0, 0))


def rule_dump_request(seq: int, family: int) -> bytes:
    """RTM_GETRULE dump of one family (4 or 6)."""
    return _request(RTM_GETRULE, NLM_F_DUMP, seq, FIB_RULE_HDR.pack(_AF[family], 0, 0, 0, 0, 0, 0, 0, 0))


def _u32(attrs: dict[int, bytes], kind: int, default: int) -> int:
    raw = attrs.get(kind)
    return _U32.unpack(raw)[0] if raw is not None and len(raw) == 4 else default


def _address(raw: bytes | None, version: int) -> IPAddress:
    """An address attribute of this family; the family's zero address when absent (a default route)."""
    size = 4 if version == 4 else 16
    if raw is None:
        return ipaddress.ip_address(bytes(size))
    if len(raw) != size:
        raise DecodeError(f"address attribute of {len(raw)} bytes in an IPv{version} message")
    return ipaddress.ip_address(raw)


def _maybe_address(raw: bytes | None) -> IPAddress | None:
    return ipaddress.ip_address(raw) if raw is not None and len(raw) in (4, 16) else None


def is_up(flags: int) -> bool:
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


def decode_link(payload: bytes | memoryview) -> LinkInfo:
    """An RTM_NEWLINK/DELLINK payload (after the netlink header)."""
    if len(payload) < IFINFOMSG.size:
        raise DecodeError("link message too short")
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(payload)
    attrs = parse_attrs(payload[IFINFOMSG.size :])
    name = _text(attrs.get(IFLA_IFNAME, b""))
    kind = _text(parse_attrs(attrs[IFLA_LINKINFO]).get(IFLA_INFO_KIND, b"")) if IFLA_LINKINFO in attrs else ""
    return LinkInfo(index, name, attrs.get(IFLA_ADDRESS, b"\0" * 6), is_up(flags), _u32(attrs, IFLA_LINK, 0), kind,
                    _text(attrs.get(IFLA_IFALIAS, b"")))


def decode_address(payload: bytes | memoryview) -> AddressInfo | None:
    """An RTM_NEWADDR payload; None for a family other than IPv4/IPv6."""
    if len(payload) < IFADDRMSG.size:
        raise DecodeError("address message too short")
    family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(payload)
    if family not in _FAMILY:
        return None
    attrs = parse_attrs(payload[IFADDRMSG.size :])
    # IPv4: IFA_LOCAL is our address (IFA_ADDRESS is the peer on point-to-point links).
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if raw is None or len(raw) != (4 if family == socket.AF_INET else 16):
        raise DecodeError("address message without a usable address")
    if len(attrs.get(IFA_FLAGS, b"")) == 4:
        flags = _U32.unpack(attrs[IFA_FLAGS])[0]
    broadcast = attrs.get(IFA_BROADCAST)
    return AddressInfo(index, ipaddress.ip_address(raw), prefixlen, flags, scope, _text(attrs.get(IFA_LABEL, b"")),
                       ipaddress.ip_address(broadcast) if broadcast and len(broadcast) == len(raw) else None)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


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
