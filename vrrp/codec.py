"""Sans-IO encode/decode of VRRP advertisements: v3 (RFC 5798/9568) and v2 (RFC 3768).

The codec never touches a socket. Decoding takes the IP-level facts (source,
destination, TTL or hop limit) from the caller, because the checksum and the
TTL rule depend on them and the kernel hands them over in different ways for
IPv4 and IPv6. Every rejection is a `DecodeError` carrying a `Reason`, so the
edge can count drops by cause instead of crashing on hostile input.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import struct
from collections.abc import Collection
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROTO_VRRP = 112
TTL_REQUIRED = 255
MCAST_V4 = ipaddress.IPv4Address("224.0.0.18")
MCAST_V6 = ipaddress.IPv6Address("ff02::12")
TYPE_ADVERTISEMENT = 1
HEADER_LEN = 8
V2_AUTH_LEN = 8
# v2 Auth Type values (RFC 2338 5.3.6). RFC 3768 keeps only 0; keepalived still sends the
# other two, so a pair can move from keepalived one node at a time (`vrrp.ah` does AH).
AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2
MAX_V3_INTERVAL_CS = 0x0FFF  # 12-bit field
MAX_PACKET = 1500  # an advert never exceeds one Ethernet frame; bound every read


class Reason(enum.Enum):
    """Why a received packet was dropped; the value is the counter name."""

    TRUNCATED = "truncated"
    BAD_TTL = "bad_ttl"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_CHECKSUM = "bad_checksum"
    BAD_LENGTH = "bad_length"
    BAD_ADDRESS_COUNT = "bad_address_count"
    BAD_AUTH = "bad_auth"
    BAD_IP_HEADER = "bad_ip_header"
    WRONG_VRID = "wrong_vrid"
    INTERVAL_MISMATCH = "interval_mismatch"
    UNKNOWN_PEER = "unknown_peer"
    ADDRESS_MISMATCH = "address_mismatch"
    OWN_PACKET = "own_packet"
    REPLAYED = "replayed"  # an AH sequence number not above the last one seen


class DecodeError(ValueError):
    """A packet that must be dropped, with the typed reason it was dropped for."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Advert:
    """One VRRP advertisement, version-independent.

    `interval_cs` is always in centiseconds: v2 carries whole seconds on the
    wire and is converted at the codec boundary so the FSM has one unit.
    """

    version: int
    vrid: int
    priority: int
    interval_cs: int
    addresses: tuple[IPAddress, ...]

    @property
    def family(self) -> int:
        return self.addresses[0].version if self.addresses else 4


@dataclass(frozen=True)
class IPv4Packet:
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address
    ttl: int
    proto: int
    payload: bytes


def inet_checksum(data: bytes) -> int:
    """The 16-bit one's complement Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """The IPv4 or IPv6 pseudo-header that v3 folds into its checksum."""
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, PROTO_VRRP, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, PROTO_VRRP)


def vrrp_checksum(
    message: bytes, version: int, src: IPAddress, dst: IPAddress, as_v2: bool = False
) -> int:
    """Checksum of a VRRP message whose checksum field is zero.

    v2 covers the message only. v3 adds the pseudo-header, except for IPv4
    when `as_v2` asks for the pre-RFC-5798 form some implementations send.
    """
    if version == 2 or (as_v2 and src.version == 4):
        return inet_checksum(message)
    return inet_checksum(pseudo_header(src, dst, len(message)) + message)


def v2_auth_data(password: str) -> bytes:
    """The Authentication Data a v2 advert carries for `password`: its first 8 bytes (UTF-8),
    zero-padded, which is also what keepalived keys AH with."""
    return _eight(password.encode())


def _eight(data: bytes) -> bytes:
    return data[:V2_AUTH_LEN].ljust(V2_AUTH_LEN, b"\x00")


def encode(
    advert: Advert,
    src: IPAddress,
    dst: IPAddress,
    *,
    checksum_as_v2: bool = False,
    auth_type: int = AUTH_NONE,
    auth_data: bytes = b"",
) -> bytes:
    """Build the VRRP message (no IP header) with its checksum filled in.

    v2 only: `auth_type` goes into the header; with AUTH_PASS the message ends with
    `auth_data` (see `v2_auth_data`), otherwise with 8 zero bytes, as keepalived sends them."""
    if advert.version not in (2, 3):
        raise ValueError(f"unsupported VRRP version {advert.version}")
    if advert.version == 2 and src.version != 4:
        raise ValueError("VRRPv2 is IPv4 only")
    if not 0 <= advert.vrid <= 255 or not 0 <= advert.priority <= 255:
        raise ValueError("vrid and priority are 0..255")
    count = len(advert.addresses)
    if count > 255:
        raise ValueError("at most 255 addresses")
    addrs = b"".join(a.packed for a in advert.addresses)
    first = (advert.version << 4) | TYPE_ADVERTISEMENT
    if advert.version == 3:
        interval = max(1, min(advert.interval_cs, MAX_V3_INTERVAL_CS))
        head = struct.pack("!BBBBHH", first, advert.vrid, advert.priority, count, interval, 0)
        body = head + addrs
    else:
        seconds = max(1, min(advert.interval_cs // 100, 255))
        head = struct.pack("!BBBBBBH", first, advert.vrid, advert.priority, count, auth_type, seconds, 0)
        body = head + addrs + (_eight(auth_data) if auth_type == AUTH_PASS else bytes(V2_AUTH_LEN))
    csum = vrrp_checksum(body, advert.version, src, dst, checksum_as_v2)
    return body[:6] + struct.pack("!H", csum) + body[8:]


def decode(
    data: bytes,
    *,
    src: IPAddress,
    dst: IPAddress,
    ttl: int,
    accept_v2_checksum: bool = False,
    auth_type: int | None = AUTH_NONE,
    auth_data: bytes = b"",
) -> Advert:
    """Parse and validate one VRRP message per RFC 5798 7.1 / RFC 3768 7.1.

    `accept_v2_checksum` also accepts a v3-over-IPv4 checksum computed
    without the pseudo-header. A v2 advert must carry `auth_type` (None: any, for
    a packet no instance claims), and with AUTH_PASS the password of `auth_data`,
    compared in constant time. Raises DecodeError only.
    """
    if ttl != TTL_REQUIRED:
        raise DecodeError(Reason.BAD_TTL, f"ttl {ttl}")
    if len(data) < HEADER_LEN:
        raise DecodeError(Reason.TRUNCATED, f"{len(data)} bytes")
    if len(data) > MAX_PACKET:
        raise DecodeError(Reason.BAD_LENGTH, f"{len(data)} bytes")
    first, vrid, priority, count = data[0], data[1], data[2], data[3]
    version, ptype = first >> 4, first & 0x0F
    if version not in (2, 3):
        raise DecodeError(Reason.BAD_VERSION, f"version {version}")
    if version == 2 and src.version != 4:
        raise DecodeError(Reason.BAD_VERSION, "v2 over IPv6")
    if ptype != TYPE_ADVERTISEMENT:
        raise DecodeError(Reason.BAD_TYPE, f"type {ptype}")
    alen = 4 if src.version == 4 else 16
    trailer = V2_AUTH_LEN if version == 2 else 0
    want = HEADER_LEN + count * alen + trailer
    if count == 0:  # RFC 5798 5.2.5 / RFC 3768 5.3.5: at least one address
        raise DecodeError(Reason.BAD_ADDRESS_COUNT, "no addresses")
    if len(data) < want:
        raise DecodeError(Reason.BAD_ADDRESS_COUNT, f"count {count} needs {want} bytes")
    if len(data) > want:
        raise DecodeError(Reason.BAD_LENGTH, f"{len(data)} bytes, expected {want}")
    _check_checksum(data, version, src, dst, accept_v2_checksum)
    if version == 3:
        interval_cs = struct.unpack_from("!H", data, 4)[0] & 0x0FFF
    else:
        _check_auth(data, auth_type, auth_data)
        interval_cs = data[5] * 100
    factory = ipaddress.IPv4Address if alen == 4 else ipaddress.IPv6Address
    addresses = tuple(
        factory(data[HEADER_LEN + i * alen : HEADER_LEN + (i + 1) * alen]) for i in range(count)
    )
    return Advert(version, vrid, priority, interval_cs, addresses)


def _check_checksum(
    data: bytes, version: int, src: IPAddress, dst: IPAddress, accept_v2: bool
) -> None:
    zeroed = data[:6] + b"\x00\x00" + data[8:]
    got = struct.unpack_from("!H", data, 6)[0]
    if vrrp_checksum(zeroed, version, src, dst) == got:
        return
    if accept_v2 and version == 3 and vrrp_checksum(zeroed, 3, src, dst, True) == got:
        return
    raise DecodeError(Reason.BAD_CHECKSUM, f"checksum {got:#06x}")


def _check_auth(data: bytes, auth_type: int | None, auth_data: bytes) -> None:
    """RFC 2338 7.1: the advert's Auth Type must be ours; a password must match ours."""
    if auth_type is None:
        return
    if data[4] != auth_type:
        raise DecodeError(Reason.BAD_AUTH, f"auth type {data[4]}, expected {auth_type}")
    if auth_type == AUTH_PASS and not hmac.compare_digest(data[-V2_AUTH_LEN:], _eight(auth_data)):
        raise DecodeError(Reason.BAD_AUTH, "wrong password")


def check_instance(
    advert: Advert, *, vrid: int, version: int, interval_cs: int,
    addresses: Collection[IPAddress] | None = None, strict_interval: bool = False,
) -> None:
    """Instance-level checks: right VRID and version; v2 also needs our interval.

    RFC 3768 7.1 drops a v2 advert whose interval differs from ours. RFC 5798
    lets a v3 backup adopt the master's interval instead, so v3 fails here only
    with `strict_interval`. With `addresses`, the advert must carry exactly that
    set: another virtual router on our VRID, or a forged advert, is dropped.
    """
    if advert.vrid != vrid:
        raise DecodeError(Reason.WRONG_VRID, f"vrid {advert.vrid}")
    if advert.version != version:
        raise DecodeError(Reason.BAD_VERSION, f"version {advert.version}, expected {version}")
    expected_cs = (interval_cs // 100) * 100 if version == 2 else interval_cs
    if (version == 2 or strict_interval) and advert.interval_cs != expected_cs:
        raise DecodeError(
            Reason.INTERVAL_MISMATCH, f"{advert.interval_cs}cs, expected {expected_cs}cs"
        )
    if addresses is not None and set(advert.addresses) != set(addresses):
        raise DecodeError(
            Reason.ADDRESS_MISMATCH,
            f"advertised {', '.join(map(str, advert.addresses)) or 'no address'}, "
            f"ours {', '.join(map(str, addresses))}",
        )


def parse_ipv4(packet: bytes) -> IPv4Packet:
    """Split what an IPv4 raw socket returns into header facts and payload."""
    if len(packet) < 20:
        raise DecodeError(Reason.TRUNCATED, "short IPv4 header")
    vihl = packet[0]
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or len(packet) < ihl:
        raise DecodeError(Reason.BAD_IP_HEADER, "malformed IPv4 header")
    total = struct.unpack_from("!H", packet, 2)[0]
    if total < ihl or total > len(packet):
        raise DecodeError(Reason.BAD_IP_HEADER, f"total length {total}")
    return IPv4Packet(
        src=ipaddress.IPv4Address(packet[12:16]),
        dst=ipaddress.IPv4Address(packet[16:20]),
        ttl=packet[8],
        proto=packet[9],
        payload=packet[ihl:total],
    )
