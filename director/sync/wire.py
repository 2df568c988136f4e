"""The kernel's IPVS connection-sync messages (version 1), and the connection table they describe.

Why directord speaks them itself: the kernel's master thread holds the newest
connections in a buffer that leaves only when the next message no longer fits or
after 2-3 s. When a director stops being master, no new traffic reaches it, so the
last messages wait those seconds while the connections they name run on the new
master, which drops them. A director that hands over re-sends its recently active
connections at once, in the kernel's own format, so the peer's kernel learns them.

Sans-IO: parse /proc/net/ip_vs_conn_sync text, choose the rows worth re-sending,
encode and decode packets. Layout, from the kernel's ip_vs_sync.c: an 8-byte header
(0, syncid, size, count, version 1, 0) then per connection type, protocol, size,
flags, state, ports, fwmark, timeout and three addresses, padded to 4 bytes.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from director.ipvs.model import Method, Timeouts

HEADER = struct.Struct("!BBHBbH")  # reserved, syncid, size, count, version, spare
CONN = struct.Struct("!BBHIHHHHII")  # type, protocol, ver_size, flags, state, cport, vport, dport, fwmark, timeout
VERSION = 1
TYPE_INET6 = 1
PROTOCOLS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP}
# The states worth re-sending (connections that still carry traffic), as /proc names them,
# and the kernel's numbers for them (IP_VS_TCP_S_*; UDP has one state)
RESENDABLE = frozenset({"ESTABLISHED", "FIN_WAIT", "UDP"})
TCP_STATES = {"ESTABLISHED": 1, "FIN_WAIT": 4}
UDP_STATE = 0
FORWARD_FLAGS: Mapping[Method, int] = {"nat": 0, "local": 1, "tun": 2, "dr": 3, "bypass": 4}
FLAG_NOOUTPUT = 0x0080  # the director sees only the client's half (every method but NAT)
FLAG_INACTIVE = 0x0100  # not established (the real server's inactive count)
FLAGS_A_PEER_KEEPS = 0x1F87  # forwarding method, NOOUTPUT, INACTIVE, sequence, no client port, template
MAX_PAYLOAD = 1400  # below any Ethernet MTU: a flush never fragments
MAX_COUNT = 255  # the header's count is one byte


@dataclass(frozen=True, slots=True)
class ConnRow:
    """One line of /proc/net/ip_vs_conn_sync."""

    protocol: str  # "TCP" | "UDP" | ...
    client: str
    client_port: int
    virtual: str
    virtual_port: int
    dest: str
    dest_port: int
    state: str
    local: bool  # made here (LOCAL), not learnt from a peer (SYNC)
    expires: int  # seconds left


def parse_conn_sync(text: str, resendable_only: bool = False) -> list[ConnRow]:
    """Rows of /proc/net/ip_vs_conn_sync; a line that does not parse is skipped (the
    file is the kernel's, but a line that changes format must not stop a handover).
    `resendable_only` skips, before converting anything, the rows a flush never sends:
    most of a busy table is closed connections waiting to expire."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        if resendable_only and (fields[8] != "LOCAL" or fields[7] not in RESENDABLE):
            continue
        try:
            rows.append(ConnRow(fields[0], _address(fields[1]), int(fields[2], 16), _address(fields[3]),
                                int(fields[4], 16), _address(fields[5]), int(fields[6], 16), fields[7],
                                fields[8] == "LOCAL", int(fields[9])))
        except ValueError:
            continue
    return rows


def _address(text: str) -> str:
    """An IPv4 address printed as 8 hex digits, or an IPv6 one printed as text."""
    if ":" in text:
        return str(ipaddress.IPv6Address(text.strip("[]")))
    if len(text) != 8:
        raise ValueError(f"not an IPv4 address in hex: {text}")
    return socket.inet_ntoa(bytes.fromhex(text))


def full_timeout(row: ConnRow, timeouts: Timeouts) -> int | None:
    """The timeout a packet restarts for this row's state; None for states not re-sent."""
    if row.protocol == "TCP" and row.state == "ESTABLISHED":
        return timeouts.tcp
    if row.protocol == "TCP" and row.state == "FIN_WAIT":
        return timeouts.tcpfin
    if row.protocol == "UDP":
        return timeouts.udp
    return None


def recently_active(rows: Iterable[ConnRow], timeouts: Timeouts, window: float) -> list[ConnRow]:
    """Connections made here that saw a packet in the last `window` seconds: their
    timer was restarted then, so fewer than `window` seconds are gone from it."""
    chosen = []
    for row in rows:
        full = full_timeout(row, timeouts)
        if row.local and full is not None and row.expires >= full - window:
            chosen.append(row)
    return chosen


def encode(rows: Iterable[ConnRow], methods: Mapping[tuple[str, str, int, str, int], Method],
           timeouts: Timeouts, syncid: int) -> list[bytes]:
    """Sync packets naming `rows`. `methods` maps (protocol, virtual address, port, real
    server address, port) to the forwarding method; a row whose real server is no longer
    in the table is left out (the peer could not bind it either)."""
    packets: list[bytes] = []
    body: list[bytes] = []
    size = HEADER.size
    for row in rows:
        method = methods.get((row.protocol.lower(), row.virtual, row.virtual_port, row.dest, row.dest_port))
        timeout = full_timeout(row, timeouts)
        if method is None or timeout is None:
            continue
        entry = _conn(row, method, timeout)
        if body and (size + len(entry) > MAX_PAYLOAD or len(body) == MAX_COUNT):
            packets.append(_packet(body, syncid))
            body, size = [], HEADER.size
        body.append(entry)
        size += len(entry)
    if body:
        packets.append(_packet(body, syncid))
    return packets


def _conn(row: ConnRow, method: Method, timeout: int) -> bytes:
    six = ":" in row.client
    flags = FORWARD_FLAGS[method]
    if method != "nat":
        flags |= FLAG_NOOUTPUT
    if row.protocol != "TCP" or row.state != "ESTABLISHED":
        flags |= FLAG_INACTIVE
    state = TCP_STATES[row.state] if row.protocol == "TCP" else UDP_STATE
    family = socket.AF_INET6 if six else socket.AF_INET
    addresses = b"".join(socket.inet_pton(family, a) for a in (row.client, row.virtual, row.dest))
    size = CONN.size + len(addresses)
    head = CONN.pack(TYPE_INET6 if six else 0, PROTOCOLS[row.protocol], size, flags, state, row.client_port,
                     row.virtual_port, row.dest_port, 0, timeout)
    return head + addresses


def _packet(body: list[bytes], syncid: int) -> bytes:
    payload = b"".join(body)
    return HEADER.pack(0, syncid, HEADER.size + len(payload), len(body), VERSION, 0) + payload


class DecodeError(ValueError):
    """Bytes that are not a version 1 sync message (a ValueError, as callers have caught)."""


@dataclass(frozen=True, slots=True)
class SyncedConn:
    """One connection named by a sync message, as the peer's kernel reads it."""

    protocol: int
    flags: int
    state: int
    client: str
    client_port: int
    virtual: str
    virtual_port: int
    dest: str
    dest_port: int
    fwmark: int
    timeout: int


def decode(packet: bytes) -> tuple[int, list[SyncedConn]]:
    """(syncid, connections) of a version-1 sync packet; DecodeError when it is not one."""
    if len(packet) < HEADER.size:
        raise DecodeError("shorter than a sync header")
    reserved, syncid, size, count, version, _spare = HEADER.unpack_from(packet)
    if reserved != 0 or version != VERSION or size != len(packet):
        raise DecodeError("not a version 1 sync message")
    conns, offset = [], HEADER.size
    for _ in range(count):
        if offset + CONN.size > len(packet):
            raise DecodeError("connection past the end")
        kind, protocol, ver_size, flags, state, cport, vport, dport, fwmark, timeout = CONN.unpack_from(packet, offset)
        length = ver_size & 0x0FFF
        width, family = (16, socket.AF_INET6) if kind & TYPE_INET6 else (4, socket.AF_INET)
        start = offset + CONN.size
        if length < CONN.size + 3 * width or offset + length > len(packet):
            raise DecodeError("connection size out of bounds")
        client, virtual, dest = (socket.inet_ntop(family, packet[start + i * width:start + (i + 1) * width])
                                 for i in range(3))
        conns.append(SyncedConn(protocol, flags, state, client, cport, virtual, vport, dest, dport, fwmark, timeout))
        offset += (length + 3) & ~3
    return syncid, conns
