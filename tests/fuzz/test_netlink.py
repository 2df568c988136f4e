"""Netlink replies: the framing (nlmsg), generic netlink (nlmsg.genl), the IPVS attributes
(director.ipvs.codec) and rtnetlink (vrrp.rtnl). Each decoder returns a value or raises
nlmsg.DecodeError, nothing else.

Byte edits of a whole message mostly break the attribute framing, so the attribute-aware
mutation edits, drops, repeats and retypes single attributes and then packs them again
with correct lengths: what the decoders behind the framing see.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import nlmsg
from director.ipvs import codec as c
from director.ipvs.model import (
    NO_TUNNEL,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    DestKey,
    DestSpec,
    ServiceKey,
    ServiceSpec,
    SyncDaemon,
    Timeouts,
)
from nlmsg import DecodeError, attr, genl, parse_attrs
from tests.fuzz.mutate import Choose, budget, drawn, mutate_bytes, pick
from vrrp import rtnl

FAMILY_ID = 0x22
MAX_VALUE = 60000  # an attribute's length field is 16 bits


def genl_head(cmd: int) -> bytes:
    return struct.pack("=BBH", cmd, c.IPVS_GENL_VERSION, 0)


def stats64(base: int) -> bytes:
    """The usual STATS64 block: ten unpadded u64 in order (the decoder's fast path)."""
    return b"".join(attr(kind, struct.pack("=Q", base * kind)) for kind in range(1, 11))


def stats32(base: int) -> bytes:
    """The legacy STATS block: u32 counters and u64 byte counts."""
    return b"".join(attr(kind, struct.pack("=Q" if kind in (4, 5) else "=I", base + kind)) for kind in range(1, 11))


SERVICES = (
    ServiceSpec(ServiceKey(4, "tcp", "192.0.2.10", 80), "wlc", SVC_F_PERSISTENT, 300, 24),
    ServiceSpec(ServiceKey(6, "udp", "2001:db8::10", 5060), "rr", SVC_F_ONEPACKET, 60, 64, "sip"),
    ServiceSpec(ServiceKey(4, "", "", 0, 7), "mh", SVC_F_SCHED1, 0, 32),
    ServiceSpec(ServiceKey(6, "sctp", "::ffff:c000:201", 443), "sh", 0, 0, 128),
)
DESTS = (
    DestSpec(DestKey(4, "10.0.0.11", 80), "nat", 10, 100, 10),
    DestSpec(DestKey(6, "2001:db8::15", 443), "tun", 1, 0, 0, "gue", 6080, "csum"),
    DestSpec(DestKey(4, "10.0.0.12", 0), "dr", 0),
)
DAEMONS = (
    SyncDaemon("master", "eth1", 51, 1400, "ff02::81", 8849, 4),
    SyncDaemon("backup", "eth0", 7, 0, "239.1.1.1"),
    SyncDaemon("master", "bond0.100", 255),
)
TIMEOUTS = (Timeouts(900, 120, 300), Timeouts(0, 0, 0))

Attrs = list[tuple[int, bytes]]


def attr_list(packed: bytes) -> Attrs:
    return list(parse_attrs(packed).items())


# Each seed: the genl command, the outer attribute that nests the rest (0: none), the inner attributes.
Seed = tuple[int, int, Attrs]
SERVICE_SEEDS: list[Seed] = [
    (c.CMD_NEW_SERVICE, c.CMD_ATTR_SERVICE,
     attr_list(c.service_full_attrs(spec) + attr(c.SVC_ATTR_STATS64, stats64(n)) + attr(c.SVC_ATTR_STATS, stats32(n))))
    for n, spec in enumerate(SERVICES)]
DEST_SEEDS: list[Seed] = [
    (c.CMD_NEW_DEST, c.CMD_ATTR_DEST,
     attr_list(c.dest_full_attrs(spec) + genl.attr_u32(c.DEST_ATTR_ACTIVE_CONNS, 3)
               + genl.attr_u32(c.DEST_ATTR_INACT_CONNS, 4) + genl.attr_u32(c.DEST_ATTR_PERSIST_CONNS, 5)
               + attr(c.DEST_ATTR_STATS64 if n % 2 else c.DEST_ATTR_STATS, stats64(n) if n % 2 else stats32(n))))
    for n, spec in enumerate(DESTS)]
DAEMON_SEEDS: list[Seed] = [
    (c.CMD_NEW_DAEMON, c.CMD_ATTR_DAEMON,
     attr_list(parse_attrs(c.new_daemon_request(FAMILY_ID, d, 1)[genl.GENL_HDR_LEN:])[c.CMD_ATTR_DAEMON]))
    for d in DAEMONS]
CONFIG_SEEDS: list[Seed] = [
    (c.CMD_SET_CONFIG, 0, attr_list(c.set_config_request(FAMILY_ID, t, 1)[genl.GENL_HDR_LEN:])) for t in TIMEOUTS]
FAMILY_SEEDS: list[Seed] = [
    (1, 0, [(genl.CTRL_ATTR_FAMILY_ID, struct.pack("=H", FAMILY_ID)), (genl.CTRL_ATTR_FAMILY_NAME, b"IPVS\0")])]


def pack(seed: Seed) -> bytes:
    """A generic netlink payload (what follows the nlmsghdr) from a seed."""
    cmd, outer, inner = seed
    body = b"".join(attr(kind, value[:MAX_VALUE]) for kind, value in inner)
    return genl_head(cmd) + (genl.nested(outer, body) if outer else body)


def mutate_attrs(inner: Attrs, choose: Choose, donors: list[Attrs]) -> Attrs:
    """A few attribute edits: a value's bytes, a drop, a repeat, another type, one from a donor."""
    inner = list(inner)
    for _ in range(choose(1, 3)):
        op = choose(0, 4) if inner else 4
        at = choose(0, len(inner) - 1) if inner else 0
        if op == 0:
            kind, value = inner[at]
            inner[at] = (kind, mutate_bytes(value, choose, max_edits=2))
        elif op == 1:
            del inner[at]
        elif op == 2:
            inner.insert(choose(0, len(inner)), inner[at])
        elif op == 3:
            inner[at] = (choose(0, 16) | (nlmsg.NLA_F_NESTED if choose(0, 7) == 0 else 0), inner[at][1])
        else:
            donor = pick(choose, donors)
            if donor:
                inner.insert(choose(0, len(inner)), pick(choose, donor))
    return inner


def payload(choose: Choose, seeds: list[Seed]) -> bytes:
    """A seed with attribute edits, and one time in four byte edits of the whole payload."""
    cmd, outer, inner = pick(choose, seeds)
    inner = mutate_attrs(inner, choose, [s[2] for s in seeds])
    data = pack((cmd, outer, inner))
    return mutate_bytes(data, choose, [pack(s) for s in seeds], 2) if choose(0, 3) == 0 else data


def payloads(seeds: list[Seed]) -> st.SearchStrategy[bytes]:
    return st.composite(lambda draw: payload(drawn(draw), seeds))()


def view(data: bytes, as_view: bool) -> bytes | memoryview:
    """Replies reach the decoders as bytes (transact) or memoryview slices (iter_messages)."""
    return memoryview(data) if as_view else data


# --- IPVS services, destinations, daemons, timeouts, family ----------------------------------


@budget(1800)
@given(payloads(SERVICE_SEEDS), st.booleans())
def test_service_replies_decode_or_raise_decode_error(data: bytes, as_view: bool) -> None:
    try:
        svc = c.decode_service_message(view(data, as_view))
    except DecodeError:
        return
    spec = svc.spec
    if spec.key.fwmark or spec.key.protocol in c.PROTO_NUM:  # what the encoder can write back
        again = c.decode_service_message(genl_head(c.CMD_NEW_SERVICE)
                                         + genl.nested(c.CMD_ATTR_SERVICE, c.service_full_attrs(spec)))
        assert again.spec == spec


@budget(1800)
@given(payloads(DEST_SEEDS), st.sampled_from([4, 6]), st.booleans())
def test_destination_replies_decode_or_raise_decode_error(data: bytes, family: int, as_view: bool) -> None:
    try:
        dest = c.decode_dest_message(view(data, as_view), family)
    except DecodeError:
        return
    spec = dest.spec
    again = c.decode_dest_message(genl_head(c.CMD_NEW_DEST) + genl.nested(c.CMD_ATTR_DEST, c.dest_full_attrs(spec)),
                                  family)
    # a dest that does not tunnel is written without its tunnel attributes
    assert again.spec == (spec if spec.method == "tun" else replace(spec, **NO_TUNNEL))


@budget(1500)
@given(payloads(DAEMON_SEEDS), st.booleans())
def test_daemon_replies_decode_or_raise_decode_error(data: bytes, as_view: bool) -> None:
    try:
        daemon = c.decode_daemon_message(view(data, as_view))
    except DecodeError:
        return
    request = c.new_daemon_request(FAMILY_ID, daemon, 1)
    assert c.decode_daemon_message(request[nlmsg.NLMSGHDR.size:]) == daemon


@budget(1000)
@given(payloads(CONFIG_SEEDS + FAMILY_SEEDS), st.booleans())
def test_config_and_family_replies_decode_or_raise_decode_error(data: bytes, as_view: bool) -> None:
    try:
        timeouts = c.decode_timeouts(view(data, as_view))
    except DecodeError:
        pass
    else:
        again = c.set_config_request(FAMILY_ID, timeouts, 1)
        assert c.decode_timeouts(again[nlmsg.NLMSGHDR.size:]) == timeouts
    try:
        family = genl.decode_family_id(view(data, as_view))
    except DecodeError:
        return
    assert 0 <= family <= 0xFFFF


# --- rtnetlink ------------------------------------------------------------------------------

LINKS = [rtnl.IFINFOMSG.pack(socket.AF_UNSPEC, 1, index, flags, 0)
         + attr(rtnl.IFLA_IFNAME, name + b"\0") + attr(rtnl.IFLA_ADDRESS, bytes(range(6)))
         for index, flags, name in ((2, rtnl.IFF_UP | rtnl.IFF_RUNNING, b"eth0"), (9, 0, b"vrrp.51"))]
ADDRESSES = [
    rtnl.IFADDRMSG.pack(socket.AF_INET, 24, 0, 0, 2) + attr(rtnl.IFA_LOCAL, bytes([192, 0, 2, 1]))
    + attr(rtnl.IFA_ADDRESS, bytes([192, 0, 2, 1])) + attr(rtnl.IFA_FLAGS, struct.pack("=I", 0x80)),
    rtnl.IFADDRMSG.pack(socket.AF_INET6, 64, rtnl.IFA_F_NODAD, 0, 3)
    + attr(rtnl.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "2001:db8::1")),
]
RTNL = LINKS + ADDRESSES


@budget(1100)
@given(st.data(), st.booleans())
def test_rtnetlink_messages_decode_or_raise_decode_error(data: st.DataObject, as_view: bool) -> None:
    choose = drawn(data.draw)
    raw = mutate_bytes(pick(choose, RTNL), choose, RTNL)
    for decoder in (rtnl.decode_link, rtnl.decode_address):
        with contextlib.suppress(DecodeError):
            decoder(view(raw, as_view))


# --- whole datagrams ---------------------------------------------------------------------------


def message(kind: int, body: bytes, seq: int = 7, flags: int = nlmsg.NLM_F_MULTI) -> bytes:
    padded = body + b"\0" * (-len(body) & 3)
    return nlmsg.NLMSGHDR.pack(nlmsg.NLMSGHDR.size + len(body), kind, flags, seq, 0) + padded


ACK = message(nlmsg.NLMSG_ERROR, struct.pack("=i", 0) + bytes(16), flags=0)
ERROR = message(nlmsg.NLMSG_ERROR, struct.pack("=i", -17) + bytes(16), flags=0)
DONE = message(nlmsg.NLMSG_DONE, struct.pack("=i", 0))
DATAGRAMS = [
    b"".join(message(FAMILY_ID, pack(s)) for s in SERVICE_SEEDS) + DONE,
    b"".join(message(FAMILY_ID, pack(s)) for s in DEST_SEEDS) + DONE,
    message(FAMILY_ID, pack(DAEMON_SEEDS[0])) + message(FAMILY_ID, pack(DAEMON_SEEDS[1])) + DONE,
    message(genl.GENL_ID_CTRL, pack(FAMILY_SEEDS[0])) + ACK,
    ACK, ERROR,
    message(rtnl.RTM_NEWLINK, LINKS[0]) + message(rtnl.RTM_DELLINK, LINKS[1]),
    message(rtnl.RTM_NEWADDR, ADDRESSES[0]) + message(rtnl.RTM_NEWADDR, ADDRESSES[1]) + DONE,
]
DECODERS: tuple[Callable[[Any], object], ...] = (
    c.decode_service_message, lambda p: c.decode_dest_message(p, 4), lambda p: c.decode_dest_message(p, 6),
    c.decode_daemon_message, c.decode_timeouts, genl.decode_family_id, rtnl.decode_link, rtnl.decode_address,
    nlmsg.error_code,
)


def every_decoder(datagram: bytes) -> None:
    """What the socket edges do with a datagram: split it, then decode each payload (here with
    every decoder, as a reply of one kind may arrive where another was asked for)."""
    assert genl.single_ack(datagram, len(datagram)) is None or len(datagram) >= 20
    list(rtnl.link_events(datagram))  # ends quietly on a malformed datagram
    try:
        messages = list(nlmsg.iter_messages(memoryview(datagram)))
    except DecodeError:
        return
    for kind, _flags, _seq, body in messages:
        assert 0 <= kind <= 0xFFFF
        for decoder in DECODERS:
            for data in (body, bytes(body)):
                with contextlib.suppress(DecodeError):
                    decoder(data)


@budget(1100)
@given(st.data())
def test_mutated_datagrams_split_and_decode_or_raise_decode_error(data: st.DataObject) -> None:
    choose = drawn(data.draw)
    every_decoder(mutate_bytes(pick(choose, DATAGRAMS), choose, DATAGRAMS))


@budget(1000)
@given(st.binary(max_size=256))
def test_random_bytes_split_and_decode_or_raise_decode_error(data: bytes) -> None:
    every_decoder(data)
    for decoder in DECODERS:
        with contextlib.suppress(DecodeError):
            decoder(data)
    with contextlib.suppress(DecodeError):
        parse_attrs(data)


def test_seeds_decode_to_what_they_were_built_from() -> None:
    """Unmutated, the seeds are valid kernel replies."""
    assert [c.decode_service_message(pack(s)).spec for s in SERVICE_SEEDS] == list(SERVICES)
    assert [c.decode_dest_message(pack(s), 4).spec.key for s in DEST_SEEDS] == [d.key for d in DESTS]
    assert [c.decode_daemon_message(pack(s)) for s in DAEMON_SEEDS] == list(DAEMONS)
    assert [c.decode_timeouts(pack(s)) for s in CONFIG_SEEDS] == list(TIMEOUTS)
    assert genl.decode_family_id(pack(FAMILY_SEEDS[0])) == FAMILY_ID
