"""VRRP adverts off the wire (vrrp.codec): an Advert or a DecodeError, nothing else.

Mutated v2 and v3 packets, IPv4 and IPv6, get their checksum recomputed after the edit,
so most of them pass the checksum check and reach the length, count, auth and address
parsing behind it; `test_the_fuzzer_reaches_past_the_checksum` proves that they do.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
from collections import Counter
from dataclasses import dataclass, replace

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.mutate import Choose, budget, drawn, fuzzed, mutate_bytes, seeded
from vrrp.codec import (
    MCAST_V4,
    MCAST_V6,
    PROTO_VRRP,
    Advert,
    DecodeError,
    IPAddress,
    Reason,
    decode,
    encode,
    inet_checksum,
    parse_ipv4,
    vrrp_checksum,
)

SRC4, SRC6 = ipaddress.IPv4Address("192.0.2.1"), ipaddress.IPv6Address("fe80::1")
ENDS = {4: (SRC4, MCAST_V4), 6: (SRC6, MCAST_V6)}
V4 = tuple(ipaddress.IPv4Address(f"192.0.2.{n}") for n in range(10, 14))
V6 = (ipaddress.IPv6Address("fe80::10"), ipaddress.IPv6Address("2001:db8::10"), ipaddress.IPv6Address("::"))


@dataclass(frozen=True)
class Seed:
    advert: Advert
    as_v2: bool = False  # a v3-over-IPv4 checksum without the pseudo-header


SEEDS = (
    Seed(Advert(3, 51, 150, 100, V4[:1])),
    Seed(Advert(3, 1, 255, 4095, V4), as_v2=True),
    Seed(Advert(2, 7, 50, 300, V4[:2])),
    Seed(Advert(2, 255, 0, 25500, V4)),
    Seed(Advert(3, 51, 100, 100, V6[:2])),
    Seed(Advert(3, 9, 1, 1, V6)),
)


def wire(seed: Seed) -> bytes:
    src, dst = ENDS[seed.advert.family]
    return encode(seed.advert, src, dst, checksum_as_v2=seed.as_v2)


WIRE = [wire(seed) for seed in SEEDS]


def with_checksum(data: bytes, src: IPAddress, dst: IPAddress, as_v2: bool) -> bytes:
    """`data` with the checksum its (possibly mutated) version field calls for."""
    if len(data) < 8:
        return data
    zeroed = data[:6] + b"\0\0" + data[8:]
    version = 2 if data[0] >> 4 == 2 else 3
    return data[:6] + struct.pack("!H", vrrp_checksum(zeroed, version, src, dst, as_v2)) + data[8:]


@dataclass(frozen=True)
class Received:
    data: bytes
    src: IPAddress
    dst: IPAddress
    ttl: int
    accept_v2: bool

    def decode(self) -> Advert:
        return decode(self.data, src=self.src, dst=self.dst, ttl=self.ttl, accept_v2_checksum=self.accept_v2)


def received(choose: Choose) -> Received:
    """A mutated seed, its checksum fixed seven times in eight; now and then from the other
    family's addresses or with a TTL other than 255."""
    index = choose(0, len(SEEDS) - 1)
    seed = SEEDS[index]
    family = seed.advert.family
    if choose(0, 15) == 0:
        family = 10 - family  # an IPv4 advert from an IPv6 source, or the reverse
    src, dst = ENDS[family]
    data = mutate_bytes(WIRE[index], choose, WIRE)
    if choose(0, 7):
        data = with_checksum(data, src, dst, seed.as_v2)
    ttl = 255 if choose(0, 15) else choose(0, 255)
    return Received(data, src, dst, ttl, seed.as_v2 or choose(0, 1) == 1)


@st.composite
def received_packets(draw: st.DrawFn) -> Received:
    return received(drawn(draw))


def check_decoded(packet: Received, advert: Advert) -> None:
    """What a decoded advert promises, and that encoding it decodes to it again (the
    encoder raises a zero interval to the least it can send)."""
    assert len(advert.addresses) == packet.data[3] > 0
    assert all(a.version == packet.src.version for a in advert.addresses)
    floor = 100 if advert.version == 2 else 1
    again = decode(encode(advert, packet.src, packet.dst), src=packet.src, dst=packet.dst, ttl=255)
    assert again == replace(advert, interval_cs=max(advert.interval_cs, floor))


@budget(2000)
@given(received_packets())
def test_mutated_adverts_decode_or_raise_decode_error(packet: Received) -> None:
    try:
        advert = packet.decode()
    except DecodeError:
        return
    check_decoded(packet, advert)


@budget(1500)
@given(st.binary(max_size=1600), st.sampled_from([4, 6]), st.booleans())
def test_random_bytes_decode_or_raise_decode_error(data: bytes, family: int, accept_v2: bool) -> None:
    src, dst = ENDS[family]
    packet = Received(data, src, dst, 255, accept_v2)
    try:
        advert = packet.decode()
    except DecodeError:
        return
    check_decoded(packet, advert)


def ipv4_packet(payload: bytes, ttl: int = 255) -> bytes:
    """The IPv4 datagram a raw socket returns around `payload` (header checksum filled in)."""
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 1, 0, ttl, PROTO_VRRP, 0,
                       SRC4.packed, MCAST_V4.packed)
    return head[:10] + struct.pack("!H", inet_checksum(head)) + head[12:] + payload


DATAGRAMS = [ipv4_packet(w) for seed, w in zip(SEEDS, WIRE, strict=True) if seed.advert.family == 4]


@budget(1500)
@given(fuzzed(DATAGRAMS, max_size=1600))
def test_ipv4_datagrams_split_or_raise_decode_error(datagram: bytes) -> None:
    """What the IPv4 socket does with every datagram: split the IP header off, decode the advert."""
    try:
        ip = parse_ipv4(datagram)
    except DecodeError:
        return
    ihl = (datagram[0] & 0x0F) * 4
    assert ip.payload == datagram[ihl:struct.unpack_from("!H", datagram, 2)[0]]
    with contextlib.suppress(DecodeError):
        decode(ip.payload, src=ip.src, dst=ip.dst, ttl=ip.ttl)


def test_the_fuzzer_reaches_past_the_checksum() -> None:
    """The fixed checksum is what lets mutations reach the field checks: every reason behind
    the checksum check turns up, and some mutations still decode."""
    reasons: Counter[Reason | None] = Counter()
    choose = seeded(5798)
    for _ in range(2000):
        try:
            received(choose).decode()
            reasons[None] += 1
        except DecodeError as exc:
            reasons[exc.reason] += 1
    behind = {Reason.BAD_LENGTH, Reason.BAD_ADDRESS_COUNT, Reason.BAD_AUTH, Reason.BAD_TYPE, Reason.BAD_VERSION}
    assert behind <= set(reasons), reasons
    assert reasons[None] > 100 and reasons[Reason.BAD_CHECKSUM] < 600, reasons


def test_seeds_are_valid() -> None:
    """Unmutated, every seed decodes to its advert: the mutations start from real packets."""
    for seed, data in zip(SEEDS, WIRE, strict=True):
        src, dst = ENDS[seed.advert.family]
        assert decode(data, src=src, dst=dst, ttl=255, accept_v2_checksum=seed.as_v2) == seed.advert
