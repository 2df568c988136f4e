"""VRRPv2 adverts inside an IPsec Authentication Header, as keepalived sends them: sans-IO.

RFC 2338 let VRRPv2 authenticate adverts with AH (RFC 2402) keyed by a shared password;
RFC 3768 dropped it, keepalived kept it (`auth_type AH`). directord speaks it byte for byte
like keepalived, so that a keepalived pair can be migrated one node at a time:

- The IPv4 header is ours (the ICV covers it): TOS 0xc0, an id that counts up from 1,
  no fragment flags, TTL 255, protocol 51.
- The AH header: next header 112 (VRRP), payload length 4 (a 24-byte header), reserved 0,
  the SPI is the sender's IPv4 address, then a sequence number and the 96-bit ICV.
- ICV: HMAC-MD5 (RFC 2403) keyed with the 8-byte Authentication Data (the password's first
  8 bytes, zero-padded), truncated to 12 bytes, over the IP header with TOS, flags and
  fragment offset and the checksum zeroed, the AH header with the ICV zeroed, and the VRRP
  message. RFC 2402 3.3.3.1.1.1 zeroes the TTL too; keepalived does only for unicast (the
  multicast TTL is 255 anyway), and a receiver that differs would reject every advert.
- Sequence numbers: keepalived keeps one counter per instance for sending and receiving. An
  advert goes out with counter + 1; one comes in only with a number above the counter, which
  then takes it. A backup that becomes master so carries on above its old master's numbers.
  A node that restarts (counter 0) is ignored until it has heard a higher number from its
  peer: the peer's adverts teach it, as they do keepalived.

The edge keeps a `Session` per instance and hands it what the socket read (`parse`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
import threading
from dataclasses import dataclass

from vrrp.codec import (
    PROTO_VRRP,
    TTL_REQUIRED,
    DecodeError,
    IPv4Packet,
    Reason,
    inet_checksum,
    parse_ipv4,
)

PROTO_AH = 51
AH_LEN = 24  # next header, payload length, reserved (4) + SPI (4) + sequence (4) + ICV (12)
AH_PAYLOAD_LEN = AH_LEN // 4 - 2  # RFC 2402 2.2: in 32-bit words, minus 2
ICV_LEN = 12  # HMAC-MD5-96 (RFC 2403)
IP_HEADER_LEN = 20
TOS_NETWORK_CONTROL = 0xC0  # what keepalived puts in the TOS byte
MAX_SEQUENCE = 2**32 - 1

IPv4Address = ipaddress.IPv4Address


@dataclass(frozen=True)
class Sealed:
    """The AH facts of one received packet; `packet` is the IP datagram the ICV covers."""

    packet: bytes
    ihl: int
    spi: int
    sequence: int
    icv: bytes
    payload: bytes  # the VRRP message


def icv(packet: bytes, ihl: int, key: bytes, *, zero_ttl: bool = False) -> bytes:
    """The 96-bit ICV of an IPv4 + AH datagram, as keepalived computes it (see the module doc)."""
    header = bytearray(packet[:ihl])
    header[1] = 0  # TOS
    header[6:8] = b"\x00\x00"  # flags and fragment offset
    header[10:12] = b"\x00\x00"  # header checksum
    if zero_ttl:
        header[8] = 0
    ah = packet[ihl : ihl + AH_LEN - ICV_LEN] + bytes(ICV_LEN)
    signed = bytes(header) + ah + packet[ihl + AH_LEN :]
    return hmac.new(key, signed, hashlib.md5).digest()[:ICV_LEN]


def build(message: bytes, src: IPv4Address, dst: IPv4Address, key: bytes, *, sequence: int, ident: int,
          zero_ttl: bool = False) -> bytes:
    """The whole IPv4 datagram carrying VRRP `message` under AH, ready for an IP_HDRINCL socket."""
    total = IP_HEADER_LEN + AH_LEN + len(message)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, TOS_NETWORK_CONTROL, total, ident, 0, TTL_REQUIRED, PROTO_AH, 0,
                         src.packed, dst.packed)
    ah = struct.pack("!BBH4sI", PROTO_VRRP, AH_PAYLOAD_LEN, 0, src.packed, sequence) + bytes(ICV_LEN)
    unsigned = header + ah + message
    code = icv(unsigned, IP_HEADER_LEN, key, zero_ttl=zero_ttl)
    header = header[:10] + struct.pack("!H", inet_checksum(header)) + header[12:]
    return header + ah[: AH_LEN - ICV_LEN] + code + message


def parse(packet: bytes) -> tuple[IPv4Packet, Sealed]:
    """Split what an IPv4 raw socket of protocol 51 returns. Raises DecodeError only."""
    ip = parse_ipv4(packet)
    if ip.proto != PROTO_AH:
        raise DecodeError(Reason.BAD_IP_HEADER, f"protocol {ip.proto}, expected AH")
    ihl = (packet[0] & 0x0F) * 4
    body = ip.payload
    if len(body) < AH_LEN:
        raise DecodeError(Reason.TRUNCATED, f"AH header in {len(body)} bytes")
    next_header, payload_len, _reserved, spi, sequence = struct.unpack_from("!BBHII", body)
    if next_header != PROTO_VRRP:
        raise DecodeError(Reason.BAD_IP_HEADER, f"AH next header {next_header}, not VRRP")
    if payload_len != AH_PAYLOAD_LEN:
        raise DecodeError(Reason.BAD_IP_HEADER, f"AH payload length {payload_len}, not {AH_PAYLOAD_LEN} (HMAC-MD5-96)")
    return ip, Sealed(packet[: ihl + len(body)], ihl, spi, sequence, body[AH_LEN - ICV_LEN : AH_LEN], body[AH_LEN:])


class Session:
    """One instance's AH numbering: the sequence counter keepalived shares between sending and
    receiving, and the IP id. Thread-safe: a stop signal's farewell seals from another thread."""

    def __init__(self) -> None:
        self.sequence = 0
        self.ident = 0
        self._lock = threading.Lock()

    def seal(self, message: bytes, src: IPv4Address, dst: IPv4Address, key: bytes) -> bytes:
        """The next datagram for `message`: one sequence number and one IP id further."""
        with self._lock:
            self.sequence = min(self.sequence + 1, MAX_SEQUENCE)
            self.ident = self.ident % 0xFFFF + 1  # never 0: the kernel would choose one, outside the ICV
            return build(message, src, dst, key, sequence=self.sequence, ident=self.ident)

    def check(self, sealed: Sealed, src: IPv4Address, key: bytes) -> None:
        """Accept a received datagram, in keepalived's order: the ICV first (nothing else in an
        unauthenticated packet can be trusted), then the SPI, then the sequence number, which
        the counter then takes. Raises DecodeError (bad_auth, replayed)."""
        if not hmac.compare_digest(sealed.icv, icv(sealed.packet, sealed.ihl, key)):
            raise DecodeError(Reason.BAD_AUTH, "AH ICV mismatch (wrong password, or the packet was changed)")
        if sealed.spi != int(src):
            raise DecodeError(Reason.BAD_AUTH, f"AH SPI {IPv4Address(sealed.spi)} is not the source {src}")
        with self._lock:
            if sealed.sequence <= self.sequence:
                raise DecodeError(Reason.REPLAYED, f"AH sequence {sealed.sequence}, last {self.sequence}")
            self.sequence = sealed.sequence
