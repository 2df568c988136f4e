"""Sans-IO ICMP echo for the ping check (RFC 792, RFC 4443): build requests, read replies.

Bounded and total: anything that is not an echo reply or an error quoting one of our echo
requests is None, never an exception.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

ECHO4, REPLY4, UNREACH4, TIME4 = 8, 0, 3, 11
ECHO6, REPLY6, UNREACH6, TIME6 = 128, 129, 1, 3

_HEAD = struct.Struct("!BBHHH")

UNREACH4_CODES = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
                  3: "port unreachable", 9: "administratively prohibited",
                  10: "administratively prohibited", 13: "administratively prohibited"}
UNREACH6_CODES = {0: "no route to host", 1: "administratively prohibited", 3: "address unreachable",
                  4: "port unreachable", 5: "source address failed policy", 6: "reject route"}


class Heard(NamedTuple):
    """Something about our echo `seq`: a reply (error None) or an ICMP error about it."""

    seq: int
    error: str | None = None
    quoted: str = ""  # the destination the erroring echo was sent to


def echo_sum(ident: int, token: bytes) -> int:
    """The one's-complement sum of an IPv4 echo request but its sequence number, once."""
    total = (ECHO4 << 8) + ident
    for i in range(0, len(token) - 1, 2):
        total += (token[i] << 8) | token[i + 1]
    return total


def echo(v6: bool, ident: int, seq: int, token: bytes, base: int) -> bytes:
    """An echo request; `base` from `echo_sum` fills the IPv4 checksum (0: the kernel does)."""
    if v6:
        return _HEAD.pack(ECHO6, 0, 0, ident, seq) + token
    checksum = 0
    if base:
        total = base + seq
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        checksum = ~total & 0xFFFF
    return _HEAD.pack(ECHO4, 0, checksum, ident, seq) + token


def parse_v4(data: bytes, raw: bool, ident: int | None, token: bytes) -> Heard | None:
    """`data` as a raw socket reads it (IP header first) or a ping socket (ICMP only)."""
    if raw:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4:]
    if len(data) < 8:
        return None
    kind, code = data[0], data[1]
    if kind == REPLY4:
        return _ours(data, ident, token)
    if kind in (UNREACH4, TIME4) and raw:
        inner = data[8:]
        if len(inner) < 20 or inner[0] >> 4 != 4:
            return None
        head = (inner[0] & 0x0F) * 4
        quoted = inner[head:head + 8]
        if len(quoted) < 8 or quoted[0] != ECHO4 or (ident is not None and _ident(quoted) != ident):
            return None
        why = UNREACH4_CODES.get(code, f"unreachable (code {code})") if kind == UNREACH4 else "time exceeded"
        return Heard(_seq(quoted), why, socket.inet_ntop(socket.AF_INET, inner[16:20]))
    return None


def parse_v6(data: bytes, raw: bool, ident: int | None, token: bytes) -> Heard | None:
    """ICMPv6 as both socket kinds read it (the kernel strips the IPv6 header)."""
    if len(data) < 8:
        return None
    kind, code = data[0], data[1]
    if kind == REPLY6:
        return _ours(data, ident, token)
    if kind in (UNREACH6, TIME6) and raw:
        inner = data[8:]
        if len(inner) < 48 or inner[0] >> 4 != 6 or inner[6] != socket.IPPROTO_ICMPV6:
            return None
        quoted = inner[40:48]
        if quoted[0] != ECHO6 or (ident is not None and _ident(quoted) != ident):
            return None
        why = UNREACH6_CODES.get(code, f"unreachable (code {code})") if kind == UNREACH6 else "time exceeded"
        return Heard(_seq(quoted), why, socket.inet_ntop(socket.AF_INET6, inner[24:40]))
    return None


def _ours(data: bytes, ident: int | None, token: bytes) -> Heard | None:
    if ident is not None and _ident(data) != ident:
        return None
    if data[8:8 + len(token)] != token:
        return None
    return Heard(_seq(data))


def _ident(data: bytes) -> int:
    return (data[4] << 8) | data[5]


def _seq(data: bytes) -> int:
    return (data[6] << 8) | data[7]


def icmp4_filter() -> bytes:
    """ICMP_FILTER: the types a raw IPv4 socket drops (all but replies and errors)."""
    return struct.pack("=I", ~((1 << REPLY4) | (1 << UNREACH4) | (1 << TIME4)) & 0xFFFFFFFF)


def icmp6_filter() -> bytes:
    """ICMP6_FILTER: 256 bits, a set bit blocks that type."""
    words = [0xFFFFFFFF] * 8
    for kind in (REPLY6, UNREACH6, TIME6):
        words[kind >> 5] &= ~(1 << (kind & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)
