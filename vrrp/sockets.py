"""Raw IP protocol 112 sockets: one per (interface, family), shared by its instances; and
protocol 51 ones for VRRPv2 under AH (`vrrp.ah`), one per interface.

Thin edge: it opens, joins, sends and receives, and hands the codec the IP
facts (source, destination, TTL/hop limit) and the runtime the moment the packet
arrived. It never interprets a payload. An AH socket sends whole IPv4 datagrams
(IP_HDRINCL: the ICV covers the IP header, so we build it) and returns the VRRP
message inside with the AH facts the runtime checks against the instance's key.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

from vrrp import ah
from vrrp.codec import MAX_PACKET, MCAST_V4, MCAST_V6, PROTO_VRRP, TTL_REQUIRED, parse_ipv4

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Linux values the socket module may not export.
_IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
_IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
_IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
_IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # asm-generic/socket.h
STAMP_SPACE = socket.CMSG_SPACE(16)  # ancillary room for one SO_TIMESTAMPNS struct timespec
_RECV_BUF = MAX_PACKET + 64  # bounded read: larger datagrams are truncated and rejected
_ANCILLARY_BUF = 256
# The kernel stamps arrivals on the wall clock. Older stamps, or ones from the future,
# mean the wall clock was stepped, and the packet counts as arriving when it is read.
MAX_ARRIVAL_AGE = 0.05


@dataclass(frozen=True)
class Received:
    data: bytes
    src: IPAddress
    dst: IPAddress
    ttl: int
    # When the kernel took it in, on the monotonic clock; None when unknown. Timers
    # started by a packet run from here, not from whenever the loop got to it.
    arrived: float | None = None
    sealed: ah.Sealed | None = None  # from an AH socket: what the instance's key must verify


class VrrpSocket:
    """A non-blocking raw VRRP socket bound to one interface (`proto` 51: VRRPv2 under AH, IPv4)."""

    def __init__(self, ifname: str, ifindex: int, family: int, multicast: bool, proto: int = PROTO_VRRP) -> None:
        self.ifname, self.ifindex, self.family, self.proto = ifname, ifindex, family, proto
        self.joined = False
        if proto == ah.PROTO_AH and family != 4:
            raise ValueError("AH is for VRRPv2, IPv4 only")
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_RAW, proto)
        try:
            self._setup(multicast)
        except OSError:
            self.sock.close()
            raise

    def _setup(self, multicast: bool) -> None:
        s = self.sock
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, self.ifname.encode())
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.family == 4:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL_REQUIRED)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL_REQUIRED)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            mreqn = struct.pack("=4s4si", MCAST_V4.packed, bytes(4), self.ifindex)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            if self.proto == ah.PROTO_AH:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)  # our header: TTL 255 is in it
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL_REQUIRED)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL_REQUIRED)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
        if multicast:
            self.join()

    def join(self) -> None:
        """Join 224.0.0.18 / ff02::12 on our interface (once; later calls are no-ops)."""
        if self.joined:
            return
        if self.family == 4:
            mreqn = struct.pack("=4s4si", MCAST_V4.packed, bytes(4), self.ifindex)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            mreq = MCAST_V6.packed + struct.pack("=I", self.ifindex)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        self.joined = True

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def recv(self) -> Received | None:
        """One datagram, or None when the queue is empty. May raise DecodeError."""
        try:
            data, anc, _flags, addr = self.sock.recvmsg(_RECV_BUF, _ANCILLARY_BUF)
        except BlockingIOError:
            return None
        arrived = _arrival(anc)
        if self.family == 4 and self.proto == ah.PROTO_AH:
            ip, sealed = ah.parse(data)
            return Received(sealed.payload, ip.src, ip.dst, ip.ttl, arrived, sealed)
        if self.family == 4:
            ip = parse_ipv4(data)
            return Received(ip.payload, ip.src, ip.dst, ip.ttl, arrived)
        ttl, dst = -1, MCAST_V6
        for level, kind, value in anc:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == _IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack("=i", value[:4])[0]
            elif kind == _IPV6_PKTINFO and len(value) >= 16:
                dst = ipaddress.IPv6Address(value[:16])
        src = ipaddress.IPv6Address(addr[0].split("%")[0])
        return Received(data, src, dst, ttl, arrived)

    def send(self, payload: bytes, src: IPAddress, dst: IPAddress) -> None:
        """Send from `src` (our primary address, never a VIP) to `dst`; on an AH socket `payload`
        is the whole datagram, its header already naming both."""
        if self.family == 4:
            info = struct.pack("=i4s4s", self.ifindex, src.packed, bytes(4))
            cmsg = [(socket.IPPROTO_IP, _IP_PKTINFO, info)]
            self.sock.sendmsg([payload], cmsg, 0, (str(dst), 0))
        else:
            info = src.packed + struct.pack("=I", self.ifindex)
            cmsg = [(socket.IPPROTO_IPV6, _IPV6_PKTINFO, info)]
            self.sock.sendmsg([payload], cmsg, 0, (str(dst), 0, 0, self.ifindex))


def kernel_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive stamp (SO_TIMESTAMPNS, CLOCK_REALTIME) from recvmsg's ancillary
    data, in seconds; None without one. The one parser of it: the daemon's sockets, the
    drill's wire capture and the benchmarks' sniffers all read arrivals with it."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = struct.unpack("=qq", value[:16])
            return sec + nsec / 1e9
    return None


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's wall-clock arrival stamp, moved onto the monotonic clock."""
    stamp = kernel_stamp(ancillary)
    if stamp is None:
        return None
    age = time.time() - stamp
    return time.monotonic() - age if 0 <= age <= MAX_ARRIVAL_AGE else None
