"""VRRPv2 authentication as keepalived sends it: PASS in the codec, AH in `vrrp.ah`.

The known vectors are adverts Debian's keepalived 2.2.7 sent (captured with tcpdump, vrid 51,
priority 100, 1 s, VIPs 192.0.2.101 and .100 from 192.0.2.2, auth_pass "longpassword", which
keepalived truncates to "longpass"): we must read them, and write the very same bytes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrp import ah
from vrrp.codec import (
    AUTH_AH,
    AUTH_NONE,
    AUTH_PASS,
    Advert,
    DecodeError,
    Reason,
    decode,
    encode,
    inet_checksum,
    v2_auth_data,
)

SRC = ipaddress.IPv4Address("192.0.2.2")
MCAST = ipaddress.IPv4Address("224.0.0.18")
VIPS = (ipaddress.IPv4Address("192.0.2.101"), ipaddress.IPv4Address("192.0.2.100"))
KEY = v2_auth_data("longpassword")
# keepalived's first PASS advert (IP header, then VRRP) and its first and last (priority 0) AH ones
KA_PASS = bytes.fromhex("45c0002c00010000ff70188cc0000202e0000012"
                        "2133640201013653c0000265c00002646c6f6e6770617373")
KA_AH_1 = bytes.fromhex("45c0004400010000ff3318b1c0000202e0000012"
                        "70040000c000020200000001c2b60f08e300166a77bacd9d"
                        "213364020201f3fec0000265c00002640000000000000000")
KA_AH_4 = bytes.fromhex("45c0004400040000ff3318aec0000202e0000012"
                        "70040000c0000202000000041f43bc9dcfe28c0e645c6f8c"
                        "21330002020157ffc0000265c00002640000000000000000")


def advert(priority: int = 100) -> Advert:
    return Advert(version=2, vrid=51, priority=priority, interval_cs=100, addresses=VIPS)


def opened(packet: bytes, session: ah.Session | None = None, key: bytes = KEY) -> Advert:
    """What the runtime does with a datagram from an AH socket."""
    ip, sealed = ah.parse(packet)
    (session or ah.Session()).check(sealed, ip.src, key)
    return decode(sealed.payload, src=ip.src, dst=ip.dst, ttl=ip.ttl, auth_type=AUTH_AH)


# --- the password -------------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "data"), [
    ("1111", b"1111\0\0\0\0"),
    ("longpassword", b"longpass"),  # keepalived: "Truncating auth_pass to 8 characters"
    ("12345678", b"12345678"),
    ("pässwörd", "pässwörd".encode()[:8]),  # bytes, not characters, as keepalived's strlen
])
def test_auth_data_is_the_first_8_bytes_zero_padded(password: str, data: bytes) -> None:
    assert v2_auth_data(password) == data


# --- PASS ---------------------------------------------------------------------------------------


def test_pass_advert_is_the_one_keepalived_sends() -> None:
    ours = encode(advert(), SRC, MCAST, auth_type=AUTH_PASS, auth_data=KEY)
    assert ours == KA_PASS[20:]
    assert ours[4] == AUTH_PASS and ours[-8:] == b"longpass"


def test_pass_round_trip_and_keepalived_advert_read() -> None:
    wire = encode(advert(), SRC, MCAST, auth_type=AUTH_PASS, auth_data=v2_auth_data("1111"))
    got = decode(wire, src=SRC, dst=MCAST, ttl=255, auth_type=AUTH_PASS, auth_data=v2_auth_data("1111"))
    assert got == advert()
    assert decode(KA_PASS[20:], src=SRC, dst=MCAST, ttl=255, auth_type=AUTH_PASS, auth_data=KEY) == advert()


def test_a_wrong_password_is_dropped_as_bad_auth() -> None:
    wire = encode(advert(), SRC, MCAST, auth_type=AUTH_PASS, auth_data=v2_auth_data("secret"))
    with pytest.raises(DecodeError) as exc:
        decode(wire, src=SRC, dst=MCAST, ttl=255, auth_type=AUTH_PASS, auth_data=v2_auth_data("secreT"))
    assert exc.value.reason is Reason.BAD_AUTH and "wrong password" in str(exc.value)


@pytest.mark.parametrize(("sent", "expected"), [
    (AUTH_NONE, AUTH_PASS), (AUTH_PASS, AUTH_NONE), (AUTH_AH, AUTH_PASS), (AUTH_PASS, AUTH_AH)])
def test_another_auth_type_is_dropped_as_bad_auth(sent: int, expected: int) -> None:
    """RFC 2338 7.1: the Auth Type must be ours (keepalived: "received a 1 auth, expecting 0!")."""
    wire = encode(advert(), SRC, MCAST, auth_type=sent, auth_data=KEY)
    with pytest.raises(DecodeError) as exc:
        decode(wire, src=SRC, dst=MCAST, ttl=255, auth_type=expected, auth_data=KEY)
    assert exc.value.reason is Reason.BAD_AUTH and f"auth type {sent}, expected {expected}" in str(exc.value)


def test_a_packet_no_instance_claims_is_decoded_whatever_its_auth() -> None:
    wire = encode(advert(), SRC, MCAST, auth_type=AUTH_PASS, auth_data=KEY)
    assert decode(wire, src=SRC, dst=MCAST, ttl=255, auth_type=None) == advert()


def test_the_checksum_covers_the_password() -> None:
    wire = bytearray(encode(advert(), SRC, MCAST, auth_type=AUTH_PASS, auth_data=KEY))
    assert inet_checksum(bytes(wire)) == 0
    wire[-1] ^= 1
    with pytest.raises(DecodeError) as exc:
        decode(bytes(wire), src=SRC, dst=MCAST, ttl=255, auth_type=AUTH_PASS, auth_data=KEY)
    assert exc.value.reason is Reason.BAD_CHECKSUM


def test_scapy_reads_our_pass_advert() -> None:
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRP

    wire = encode(advert(), SRC, MCAST, auth_type=AUTH_PASS, auth_data=v2_auth_data("1111"))
    layer = IP(bytes(IP(src=str(SRC), dst=str(MCAST), ttl=255, proto=112) / VRRP(wire)))[VRRP]
    assert (layer.authtype, layer.vrid, layer.priority, layer.adv) == (1, 51, 100, 1)
    assert struct.pack("!II", layer.auth1, layer.auth2) == b"1111\0\0\0\0"


# --- AH -----------------------------------------------------------------------------------------


def test_ah_datagram_is_the_one_keepalived_sends() -> None:
    """Byte for byte, IP header (TOS 0xc0, id, TTL 255, protocol 51, checksum) included."""
    message = encode(advert(), SRC, MCAST, auth_type=AUTH_AH)
    assert ah.build(message, SRC, MCAST, KEY, sequence=1, ident=1) == KA_AH_1
    farewell = encode(advert(priority=0), SRC, MCAST, auth_type=AUTH_AH)
    assert ah.build(farewell, SRC, MCAST, KEY, sequence=4, ident=4) == KA_AH_4


def test_a_session_numbers_its_datagrams_like_keepalived() -> None:
    session = ah.Session()
    message = encode(advert(), SRC, MCAST, auth_type=AUTH_AH)
    assert session.seal(message, SRC, MCAST, KEY) == KA_AH_1
    second = session.seal(message, SRC, MCAST, KEY)
    _, sealed = ah.parse(second)
    assert (sealed.sequence, struct.unpack_from("!H", second, 4)[0], sealed.spi) == (2, 2, int(SRC))


def test_keepalived_ah_adverts_are_read() -> None:
    session = ah.Session()
    assert opened(KA_AH_1, session) == advert()
    assert opened(KA_AH_4, session) == advert(priority=0)
    assert session.sequence == 4


def test_a_wrong_key_fails_the_icv() -> None:
    with pytest.raises(DecodeError) as exc:
        opened(KA_AH_1, key=v2_auth_data("longpasX"))
    assert exc.value.reason is Reason.BAD_AUTH and "ICV" in str(exc.value)


@pytest.mark.parametrize("offset", [9, 12, 16, 20, 24, 28, 33, 44, 46, 50, 60, 67])
def test_a_changed_byte_fails_the_icv(offset: int) -> None:
    """Protocol, addresses, AH header, ICV and the advert are all covered (the TTL too, as
    keepalived covers it for multicast: a router in between could not have forwarded it)."""
    tampered = bytearray(KA_AH_1)
    tampered[offset] ^= 0x01
    with pytest.raises(DecodeError) as exc:
        opened(bytes(tampered))
    assert exc.value.reason in (Reason.BAD_AUTH, Reason.BAD_IP_HEADER), exc.value


@pytest.mark.parametrize(("offset", "value"), [(1, 0x00), (6, 0x40), (10, 0x12)])
def test_the_mutable_fields_are_outside_the_icv(offset: int, value: int) -> None:
    """TOS, flags/fragment offset and the header checksum may change in transit (RFC 2402 3.3.3.1.1.1)."""
    changed = bytearray(KA_AH_1)
    changed[offset] = value
    assert opened(bytes(changed)) == advert()


def test_rfc_2402_would_zero_the_ttl_and_keepalived_does_for_unicast() -> None:
    plain = ah.icv(KA_AH_1, 20, KEY)
    assert plain == KA_AH_1[32:44]
    hop = bytearray(KA_AH_1)
    hop[8] = 64
    assert ah.icv(bytes(hop), 20, KEY, zero_ttl=True) == ah.icv(KA_AH_1, 20, KEY, zero_ttl=True) != plain


def test_a_replayed_or_older_sequence_number_is_dropped() -> None:
    session = ah.Session()
    opened(KA_AH_4, session)
    for packet in (KA_AH_4, KA_AH_1):
        with pytest.raises(DecodeError) as exc:
            opened(packet, session)
        assert exc.value.reason is Reason.REPLAYED


def test_sending_carries_on_above_the_numbers_heard() -> None:
    """One counter for both directions: a backup that takes over continues its old master's numbers."""
    session = ah.Session()
    opened(KA_AH_4, session)
    ours = session.seal(encode(advert(), SRC, MCAST, auth_type=AUTH_AH), SRC, MCAST, KEY)
    assert ah.parse(ours)[1].sequence == 5


def test_an_spi_other_than_the_source_is_dropped() -> None:
    message = encode(advert(), SRC, MCAST, auth_type=AUTH_AH)
    forged = ah.build(message, SRC, MCAST, KEY, sequence=1, ident=1)
    _, sealed = ah.parse(forged)
    with pytest.raises(DecodeError) as exc:
        ah.Session().check(sealed, ipaddress.IPv4Address("192.0.2.9"), KEY)
    assert exc.value.reason is Reason.BAD_AUTH and "SPI" in str(exc.value)


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda p: p[:20] + p[20:30], Reason.BAD_IP_HEADER),  # total length beyond the datagram
    (lambda p: p[:2] + struct.pack("!H", 30) + p[4:30], Reason.TRUNCATED),  # room for no AH header
    (lambda p: p[:9] + bytes([112]) + p[10:], Reason.BAD_IP_HEADER),  # not protocol 51
    (lambda p: p[:20] + bytes([6]) + p[21:], Reason.BAD_IP_HEADER),  # next header TCP
    (lambda p: p[:21] + bytes([3]) + p[22:], Reason.BAD_IP_HEADER),  # another ICV length
], ids=["short", "no-room", "protocol", "next-header", "payload-length"])
def test_a_malformed_ah_datagram_is_a_decode_error(mutate, reason) -> None:
    with pytest.raises(DecodeError) as exc:
        ah.parse(mutate(KA_AH_1))
    assert exc.value.reason is reason


def test_scapy_dissects_our_ah_datagram() -> None:
    from scapy.layers.inet import IP
    from scapy.layers.ipsec import AH
    from scapy.layers.vrrp import VRRP

    packet = IP(ah.build(encode(advert(), SRC, MCAST, auth_type=AUTH_AH), SRC, MCAST, KEY, sequence=7, ident=9))
    assert (packet.tos, packet.id, packet.flags, packet.ttl, packet.proto) == (0xC0, 9, 0, 255, 51)
    layer = packet[AH]
    assert (layer.nh, layer.payloadlen, layer.spi, layer.seq, len(layer.icv)) == (112, 4, int(SRC), 7, 12)
    vrrp = VRRP(bytes(layer.payload))
    assert (vrrp.authtype, vrrp.vrid, vrrp.priority, vrrp.addrlist) == (2, 51, 100, [str(a) for a in VIPS])
    rebuilt = IP(bytes(packet))
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == packet.chksum  # scapy agrees with our header checksum


# --- fuzz: nothing but DecodeError escapes -------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=120))
def test_fuzz_ah_parse(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        opened(data)


@settings(max_examples=400, deadline=None)
@given(pos=st.integers(0, len(KA_AH_1) - 1), byte=st.integers(0, 255), cut=st.integers(0, 8))
def test_fuzz_mutated_keepalived_datagram(pos: int, byte: int, cut: int) -> None:
    mutated = bytearray(KA_AH_1)
    mutated[pos] = byte
    with contextlib.suppress(DecodeError):
        opened(bytes(mutated[: len(mutated) - cut]))


# --- the runtime's parts: the farewell, the receive checks, reloads, sockets ---------------------


def test_an_ah_farewell_is_sealed_when_sent_above_every_advert_before_it() -> None:
    """Sealed in advance, the farewell would carry an old sequence number: the peer would drop it."""
    from vrrp.adverts import Advertiser, Route
    from vrrp.counters import Counters

    class Sock:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def send(self, payload: bytes, src: object, dst: object) -> None:
            self.sent.append(payload)

    sock, counters, out = Sock(), Counters(), Advertiser()
    route = Route(sock, SRC, (MCAST,), auth_type=AUTH_AH, auth_data=KEY, session=ah.Session())  # type: ignore[arg-type]
    for _ in range(3):
        out.send("VI_1", route, advert(), counters, master=True)
    out.farewell()
    sealed = [ah.parse(packet)[1] for packet in sock.sent]
    assert [s.sequence for s in sealed] == [1, 2, 3, 4]
    assert decode(sealed[-1].payload, src=SRC, dst=MCAST, ttl=255, auth_type=AUTH_AH).priority == 0


def instance(**kw: object):
    from director.config.model import VrrpInstanceConfig

    base: dict = {"name": "VI_1", "interface": "eth0", "vrid": 51, "version": 2,
                  "virtual_ips": (ipaddress.ip_interface("192.0.2.101/24"), ipaddress.ip_interface("192.0.2.100/24"))}
    return VrrpInstanceConfig(**(base | kw))


def live(cfg, session: ah.Session | None = None):
    """What `_accepted` reads of a running instance."""
    from types import SimpleNamespace

    from vrrp.live import Live

    lv = SimpleNamespace(cfg=cfg, session=session, primary=ipaddress.IPv4Address("192.0.2.1"),
                         fsm=SimpleNamespace(interval_cs=100))
    lv.auth = Live.auth.fget(lv)  # type: ignore[attr-defined]
    return lv


def received(packet: bytes, *, sealed: bool):
    from vrrp.sockets import Received

    if sealed:
        ip, seal = ah.parse(packet)
        return Received(seal.payload, ip.src, ip.dst, ip.ttl, None, seal)
    return Received(packet[20:], SRC, MCAST, 255)


def test_the_runtime_checks_each_instance_by_its_own_authentication() -> None:
    from vrrp.runtime import _accepted

    pass_cfg = instance(auth_type="pass", auth_pass="longpassword")
    assert _accepted(live(pass_cfg), received(KA_PASS, sealed=False))[1] == advert()
    for cfg, got in [(instance(auth_type="pass", auth_pass="other"), received(KA_PASS, sealed=False)),
                     (instance(), received(KA_PASS, sealed=False)),  # keepalived with PASS, we without
                     (instance(), received(KA_AH_1, sealed=True)),
                     (instance(auth_type="ah", auth_pass="longpassword"), received(KA_PASS, sealed=False))]:
        session = ah.Session() if cfg.auth_type == "ah" else None
        with pytest.raises(DecodeError) as exc:
            _accepted(live(cfg, session), got)
        assert exc.value.reason is Reason.BAD_AUTH, (cfg, exc.value)


def test_the_runtime_learns_and_enforces_ah_sequence_numbers() -> None:
    from vrrp.runtime import _accepted

    lv = live(instance(auth_type="ah", auth_pass="longpassword"), ah.Session())
    assert _accepted(lv, received(KA_AH_1, sealed=True))[1] == advert()
    assert _accepted(lv, received(KA_AH_4, sealed=True))[1] == advert(priority=0)
    with pytest.raises(DecodeError) as exc:
        _accepted(lv, received(KA_AH_4, sealed=True))
    assert exc.value.reason is Reason.REPLAYED and lv.session.sequence == 4


def test_a_reload_replaces_an_instance_whose_auth_type_changes_but_not_one_whose_password_does() -> None:
    from vrrp.runtime import _identity

    plain, passed, ahed = instance(), instance(auth_type="pass", auth_pass="a"), instance(auth_type="ah", auth_pass="a")
    assert len({_identity(plain), _identity(passed), _identity(ahed)}) == 3
    assert _identity(ahed) == _identity(instance(auth_type="ah", auth_pass="b"))


def test_ah_instances_use_their_own_protocol_51_socket() -> None:
    from vrrp.socket_table import protocol_of

    assert [protocol_of(cfg) for cfg in (instance(), instance(auth_type="pass", auth_pass="a"),
                                         instance(auth_type="ah", auth_pass="a"))] == [112, 112, 51]
