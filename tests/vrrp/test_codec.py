"""Codec: round trips, RFC receive rules, and scapy as an independent reference."""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrp.codec import (
    Advert,
    DecodeError,
    Reason,
    check_instance,
    decode,
    encode,
    inet_checksum,
    parse_ipv4,
)

V4A = ipaddress.IPv4Address("192.0.2.1")
V4M = ipaddress.IPv4Address("224.0.0.18")
V6A = ipaddress.IPv6Address("fe80::1")
V6M = ipaddress.IPv6Address("ff02::12")
VIP4 = (ipaddress.IPv4Address("192.0.2.10"), ipaddress.IPv4Address("192.0.2.11"))
VIP6 = (ipaddress.IPv6Address("fd00::10"),)


def v3(**kw) -> Advert:
    base = dict(version=3, vrid=51, priority=150, interval_cs=100, addresses=VIP4)
    base.update(kw)
    return Advert(**base)


def test_round_trip_v3_ipv4() -> None:
    a = v3()
    assert decode(encode(a, V4A, V4M), src=V4A, dst=V4M, ttl=255) == a


def test_round_trip_v3_ipv6() -> None:
    a = v3(addresses=VIP6, interval_cs=10)
    assert decode(encode(a, V6A, V6M), src=V6A, dst=V6M, ttl=255) == a


def test_round_trip_v2() -> None:
    a = v3(version=2, interval_cs=300)
    assert decode(encode(a, V4A, V4M), src=V4A, dst=V4M, ttl=255) == a


def test_v3_checksum_includes_pseudo_header() -> None:
    """RFC 5798 5.2.8: the v3 checksum covers the IPv4 pseudo-header."""
    wire = encode(v3(), V4A, V4M)
    other = ipaddress.IPv4Address("192.0.2.2")
    with pytest.raises(DecodeError) as exc:
        decode(wire, src=other, dst=V4M, ttl=255)
    assert exc.value.reason is Reason.BAD_CHECKSUM


def test_v3_checksum_as_v2_option() -> None:
    """The pseudo-header-less form is rejected unless explicitly accepted."""
    wire = encode(v3(), V4A, V4M, checksum_as_v2=True)
    body = wire[:6] + b"\0\0" + wire[6 + 2 :]
    assert struct.unpack("!H", wire[6:8])[0] == inet_checksum(body)
    with pytest.raises(DecodeError):
        decode(wire, src=V4A, dst=V4M, ttl=255)
    assert decode(wire, src=V4A, dst=V4M, ttl=255, accept_v2_checksum=True) == v3()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda w: w[:5], Reason.TRUNCATED),
        (lambda w: bytes([0x41]) + w[1:], Reason.BAD_VERSION),
        (lambda w: bytes([0x32]) + w[1:], Reason.BAD_TYPE),
        (lambda w: w[:6] + bytes([w[6] ^ 1]) + w[7:], Reason.BAD_CHECKSUM),
        (lambda w: w + b"\0\0\0\0", Reason.BAD_LENGTH),
        (lambda w: w[:3] + bytes([9]) + w[4:], Reason.BAD_ADDRESS_COUNT),
        (lambda w: w[:3] + bytes([0]) + w[4:8], Reason.BAD_ADDRESS_COUNT),
    ],
    ids=["truncated", "version", "type", "checksum", "length", "count", "zero-count"],
)
def test_receive_validation_reasons(mutate, reason) -> None:
    """RFC 5798 7.1: version, type, checksum, length and address count are verified."""
    with pytest.raises(DecodeError) as exc:
        decode(mutate(encode(v3(), V4A, V4M)), src=V4A, dst=V4M, ttl=255)
    assert exc.value.reason is reason


@pytest.mark.parametrize("ttl", [0, 1, 64, 254])
def test_ttl_must_be_255(ttl: int) -> None:
    """RFC 5798 7.1: TTL/hop limit other than 255 is dropped."""
    with pytest.raises(DecodeError) as exc:
        decode(encode(v3(), V4A, V4M), src=V4A, dst=V4M, ttl=ttl)
    assert exc.value.reason is Reason.BAD_TTL


def test_a_unicast_advert_may_arrive_within_its_ttl_range() -> None:
    """A routed peer's adverts lose a TTL per hop; multicast ones must still arrive with 255."""
    peer = ipaddress.ip_address("198.51.100.9")
    unicast = encode(v3(), V4A, peer)
    assert decode(unicast, src=V4A, dst=peer, ttl=253, unicast_ttl=(250, 254)).vrid == v3().vrid
    for ttl in (249, 255):
        with pytest.raises(DecodeError) as exc:
            decode(unicast, src=V4A, dst=peer, ttl=ttl, unicast_ttl=(250, 254))
        assert exc.value.reason is Reason.BAD_TTL
    with pytest.raises(DecodeError):  # the range is for unicast only
        decode(encode(v3(), V4A, V4M), src=V4A, dst=V4M, ttl=253, unicast_ttl=(250, 254))


def test_v2_auth_type_must_be_zero() -> None:
    """RFC 3768 5.3.6: only auth type 0 remains; others are dropped."""
    a = v3(version=2, interval_cs=100)
    wire = bytearray(encode(a, V4A, V4M))
    wire[4] = 1
    wire[6:8] = b"\0\0"
    wire[6:8] = struct.pack("!H", inet_checksum(bytes(wire)))
    with pytest.raises(DecodeError) as exc:
        decode(bytes(wire), src=V4A, dst=V4M, ttl=255)
    assert exc.value.reason is Reason.BAD_AUTH


def test_v2_over_ipv6_rejected() -> None:
    with pytest.raises(ValueError):
        encode(v3(version=2, addresses=VIP6), V6A, V6M)


def test_instance_checks() -> None:
    """Foreign VRID dropped; v2 interval mismatch dropped (RFC 3768 7.1); v3 adopts."""
    with pytest.raises(DecodeError) as exc:
        check_instance(v3(vrid=7), vrid=51, version=3, interval_cs=100)
    assert exc.value.reason is Reason.WRONG_VRID
    with pytest.raises(DecodeError) as exc:
        check_instance(v3(version=2, interval_cs=200), vrid=51, version=2, interval_cs=100)
    assert exc.value.reason is Reason.INTERVAL_MISMATCH
    check_instance(v3(interval_cs=50), vrid=51, version=3, interval_cs=100)


def test_strict_interval_drops_a_v3_advert_with_another_interval() -> None:
    with pytest.raises(DecodeError) as exc:
        check_instance(v3(interval_cs=4095), vrid=51, version=3, interval_cs=100, strict_interval=True)
    assert exc.value.reason is Reason.INTERVAL_MISMATCH and "4095cs, expected 100cs" in str(exc.value)
    check_instance(v3(interval_cs=100), vrid=51, version=3, interval_cs=100, strict_interval=True)


def test_the_address_list_must_be_ours_in_any_order() -> None:
    ours = v3().addresses
    check_instance(v3(addresses=tuple(reversed(ours))), vrid=51, version=3, interval_cs=100, addresses=ours)
    check_instance(v3(addresses=(ipaddress.ip_address("198.51.100.9"),)), vrid=51, version=3, interval_cs=100)
    foreign = ipaddress.IPv4Address("198.51.100.9")
    for other in ((foreign,), ours[:1], (*ours, foreign), ()):
        with pytest.raises(DecodeError) as exc:
            check_instance(v3(addresses=other), vrid=51, version=3, interval_cs=100, addresses=ours)
        assert exc.value.reason is Reason.ADDRESS_MISMATCH


def test_parse_ipv4() -> None:
    payload = encode(v3(), V4A, V4M)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 255, 112, 0, V4A.packed, V4M.packed
    )
    pkt = parse_ipv4(hdr + payload + b"pad")
    assert (pkt.src, pkt.dst, pkt.ttl, pkt.proto, pkt.payload) == (V4A, V4M, 255, 112, payload)
    with pytest.raises(DecodeError):
        parse_ipv4(hdr[:10])
    with pytest.raises(DecodeError):
        parse_ipv4(b"\x46" + hdr[1:])


# --- scapy as an independent reference, both directions ---------------------


def test_scapy_dissects_our_v3_ipv4() -> None:
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRPv3

    wire = encode(v3(), V4A, V4M)
    pkt = IP(bytes(IP(src=str(V4A), dst=str(V4M), ttl=255, proto=112) / VRRPv3(wire)))
    layer = pkt[VRRPv3]
    assert (layer.vrid, layer.priority, layer.adv, layer.ipcount) == (51, 150, 100, 2)
    assert layer.addrlist == [str(a) for a in VIP4]
    # scapy recomputes the checksum on a copy with chksum unset: it must agree.
    rebuilt = IP(src=str(V4A), dst=str(V4M), ttl=255) / VRRPv3(
        vrid=51, priority=150, adv=100, addrlist=[str(a) for a in VIP4]
    )
    assert bytes(rebuilt[VRRPv3]) == wire


def test_scapy_dissects_our_v3_ipv6() -> None:
    from scapy.layers.inet6 import IPv6
    from scapy.layers.vrrp import VRRPv3

    a = v3(addresses=VIP6, interval_cs=10)
    wire = encode(a, V6A, V6M)
    ref = IPv6(src=str(V6A), dst=str(V6M), hlim=255) / VRRPv3(
        vrid=51, priority=150, adv=10, addrlist=[str(VIP6[0])]
    )
    assert bytes(IPv6(bytes(ref))[VRRPv3]) == wire


def test_scapy_dissects_our_v2() -> None:
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRP

    a = v3(version=2, interval_cs=100)
    wire = encode(a, V4A, V4M)
    ref = IP(src=str(V4A), dst=str(V4M), ttl=255) / VRRP(
        vrid=51, priority=150, adv=1, addrlist=[str(x) for x in VIP4]
    )
    assert bytes(IP(bytes(ref))[VRRP]) == wire


@settings(max_examples=60, deadline=None)
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    adv=st.integers(1, 4095),
    addrs=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8),
)
def test_we_decode_scapy_v3(vrid: int, prio: int, adv: int, addrs: list[int]) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRPv3

    ips = [str(ipaddress.IPv4Address(x)) for x in addrs]
    ref = IP(bytes(IP(src=str(V4A), dst=str(V4M), ttl=255) / VRRPv3(
        vrid=vrid, priority=prio, adv=adv, addrlist=ips)))
    got = decode(bytes(ref[VRRPv3]), src=V4A, dst=V4M, ttl=255)
    assert (got.vrid, got.priority, got.interval_cs) == (vrid, prio, adv)
    assert [str(x) for x in got.addresses] == ips


@settings(max_examples=40, deadline=None)
@given(vrid=st.integers(1, 255), prio=st.integers(0, 255), adv=st.integers(1, 255))
def test_we_decode_scapy_v2(vrid: int, prio: int, adv: int) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRP

    ref = IP(bytes(IP(src=str(V4A), dst=str(V4M), ttl=255) / VRRP(
        vrid=vrid, priority=prio, adv=adv, addrlist=["192.0.2.10"])))
    got = decode(bytes(ref[VRRP]), src=V4A, dst=V4M, ttl=255)
    assert (got.version, got.vrid, got.priority, got.interval_cs) == (2, vrid, prio, adv * 100)


# --- fuzz: nothing but DecodeError escapes -----------------------------------


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=120), ttl=st.integers(0, 255), six=st.booleans())
def test_fuzz_only_decode_error(data: bytes, ttl: int, six: bool) -> None:
    src, dst = (V6A, V6M) if six else (V4A, V4M)
    with contextlib.suppress(DecodeError):
        decode(data, src=src, dst=dst, ttl=ttl, accept_v2_checksum=True)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), pos=st.integers(0, 60), byte=st.integers(0, 255))
def test_fuzz_mutated_valid_packet(data: bytes, pos: int, byte: int) -> None:
    wire = bytearray(encode(v3(), V4A, V4M))
    if pos < len(wire):
        wire[pos] = byte
    with contextlib.suppress(DecodeError):
        decode(bytes(wire) + data[:pos % 5], src=V4A, dst=V4M, ttl=255)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=100))
def test_fuzz_ipv4_header(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_ipv4(data)
