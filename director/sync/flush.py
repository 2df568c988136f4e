"""Re-send this director's recently active connections to its peer when it stops being master.

The I/O edge of `director.sync.wire`: read the kernel's connection table, send the
chosen rows to the sync group the way the kernel's master thread would.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from director.config.model import SyncDaemonConfig
from director.ipvs.model import KernelTable, Method, Timeouts
from director.sync.wire import encode, parse_conn_sync, recently_active

CONN_SYNC = Path("/proc/net/ip_vs_conn_sync")
DEFAULT_GROUP = "224.0.0.81"
# Seconds of recent activity that make a connection worth re-sending: longer than the
# kernel's 2-3 s hold on a sync packet that is not full.
FLUSH_WINDOW = 5.0


@dataclass(frozen=True)
class FlushReport:
    connections: int
    packets: int


def methods_of(kernel: KernelTable) -> dict[tuple[str, str, int, str, int], Method]:
    """(protocol, virtual address, port, real server address, port) -> forwarding method."""
    methods: dict[tuple[str, str, int, str, int], Method] = {}
    for key, service in kernel.items():
        if key.fwmark:
            continue  # the table does not say which fwmark a connection came by
        for dest_key, dest in service.dests.items():
            methods[(key.protocol, key.address, key.port, dest_key.address, dest_key.port)] = dest.spec.method
    return methods


def flush(sync: SyncDaemonConfig, kernel: KernelTable, timeouts: Timeouts,
          table: Path = CONN_SYNC) -> FlushReport:
    rows = recently_active(parse_conn_sync(table.read_text(), resendable_only=True), timeouts, FLUSH_WINDOW)
    packets = encode(rows, methods_of(kernel), timeouts, sync.syncid)
    if packets:
        with _sender(sync) as sock:
            for packet in packets:
                sock.send(packet)
    return FlushReport(len(rows), len(packets))


def _sender(sync: SyncDaemonConfig) -> socket.socket:
    """A UDP socket on the sync interface, connected to the group, not looped back to us."""
    group = str(sync.mcast_group) if sync.mcast_group else DEFAULT_GROUP
    six = ":" in group
    sock = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        index = socket.if_nametoindex(sync.interface)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sync.interface.encode())
        if six:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, sync.mcast_ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("=4s4si", bytes(4), bytes(4), index))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, sync.mcast_ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.connect((group, sync.mcast_port))
    except OSError:
        sock.close()
        raise
    return sock
