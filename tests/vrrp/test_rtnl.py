"""The rtnetlink codec on bytes (the address edge against a real kernel is in
test_rtnl_netns.py)."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

import nlmsg
from vrrp import rtnl


def split(msg: bytes) -> tuple[tuple[int, int, int, int, int], bytes]:
    hdr = struct.unpack_from("=IHHII", msg)
    assert hdr[0] == len(msg)
    return hdr, msg[16:]


def test_address_add_request_is_an_exclusive_create_with_local_and_address() -> None:
    vip = ipaddress.ip_interface("192.0.2.100/24")
    hdr, body = split(rtnl.address_request(7, True, 3, vip))
    assert hdr[1] == rtnl.RTM_NEWADDR and hdr[3] == 7
    assert hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE | nlmsg.NLM_F_EXCL
    assert rtnl.IFADDRMSG.unpack_from(body) == (socket.AF_INET, 24, 0, 0, 3)
    attrs = nlmsg.parse_attrs(body[8:])
    assert attrs[rtnl.IFA_LOCAL] == attrs[rtnl.IFA_ADDRESS] == vip.ip.packed


def test_ipv6_add_skips_dad_and_delete_has_no_create_flags() -> None:
    vip = ipaddress.ip_interface("fd00::100/64")
    _hdr, body = split(rtnl.address_request(1, True, 2, vip))
    assert rtnl.IFADDRMSG.unpack_from(body) == (socket.AF_INET6, 64, rtnl.IFA_F_NODAD, 0, 2)
    hdr, body = split(rtnl.address_request(2, False, 2, vip))
    assert hdr[1] == rtnl.RTM_DELADDR and hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK
    assert rtnl.IFADDRMSG.unpack_from(body)[2] == 0


def test_link_state_request_changes_only_the_up_flag() -> None:
    hdr, body = split(rtnl.link_state_request(5, 9, False))
    assert hdr[1] == rtnl.RTM_NEWLINK and hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK and hdr[3] == 5
    assert rtnl.IFINFOMSG.unpack(body) == (socket.AF_UNSPEC, 0, 9, 0, rtnl.IFF_UP)
    _hdr, body = split(rtnl.link_state_request(6, 9, True))
    assert rtnl.IFINFOMSG.unpack(body) == (socket.AF_UNSPEC, 0, 9, rtnl.IFF_UP, rtnl.IFF_UP)


def test_decode_address_prefers_local_and_the_32_bit_flags() -> None:
    body = rtnl.IFADDRMSG.pack(socket.AF_INET, 32, 0, 0, 4)
    body += nlmsg.attr(rtnl.IFA_ADDRESS, bytes([10, 0, 0, 2])) + nlmsg.attr(rtnl.IFA_LOCAL, bytes([10, 0, 0, 1]))
    body += nlmsg.attr(rtnl.IFA_FLAGS, struct.pack("=I", 0x100 | rtnl.IFA_F_SECONDARY))
    info = rtnl.decode_address(body)
    assert info == rtnl.AddressInfo(4, ipaddress.ip_address("10.0.0.1"), 32, 0x101)


def test_decode_address_rejects_a_wrong_length_and_skips_other_families() -> None:
    bad = rtnl.IFADDRMSG.pack(socket.AF_INET6, 64, 0, 0, 1) + nlmsg.attr(rtnl.IFA_ADDRESS, b"\1\2\3\4")
    with pytest.raises(nlmsg.DecodeError):
        rtnl.decode_address(bad)
    assert rtnl.decode_address(rtnl.IFADDRMSG.pack(socket.AF_PACKET, 0, 0, 0, 1)) is None
    with pytest.raises(nlmsg.DecodeError):
        rtnl.decode_address(b"\2\0")


def test_link_request_and_decode() -> None:
    hdr, body = split(rtnl.link_request(5, "eth0"))
    assert hdr[1] == rtnl.RTM_GETLINK and hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK
    assert nlmsg.parse_attrs(body[16:])[rtnl.IFLA_IFNAME] == b"eth0\0"
    reply = rtnl.IFINFOMSG.pack(0, 1, 9, rtnl.IFF_UP | rtnl.IFF_RUNNING, 0)
    reply += nlmsg.attr(rtnl.IFLA_IFNAME, b"eth0\0") + nlmsg.attr(rtnl.IFLA_ADDRESS, bytes.fromhex("020000000009"))
    assert rtnl.decode_link(reply) == rtnl.LinkInfo(9, "eth0", bytes.fromhex("020000000009"), True)


# --- address options, routes and rules: decode what we encode -----------------------------------


def payload(msg: bytes) -> bytes:
    return split(msg)[1]


def test_an_address_with_options_carries_label_broadcast_scope_and_noprefixroute() -> None:
    vip = ipaddress.ip_interface("10.0.0.1/24")
    msg = rtnl.address_request(3, True, 7, vip, broadcast=ipaddress.ip_address("10.0.0.255"),
                               scope=rtnl.RT_SCOPES["link"], label="eth1:vip", noprefixroute=True)
    body = payload(msg)
    assert rtnl.IFADDRMSG.unpack_from(body) == (socket.AF_INET, 24, 0, rtnl.RT_SCOPES["link"], 7)
    attrs = nlmsg.parse_attrs(body[8:])
    assert attrs[rtnl.IFA_LABEL] == b"eth1:vip\0"
    assert attrs[rtnl.IFA_BROADCAST] == bytes([10, 0, 0, 255])
    assert struct.unpack("=I", attrs[rtnl.IFA_FLAGS])[0] == rtnl.IFA_F_NOPREFIXROUTE  # beyond ifa_flags' 8 bits
    assert rtnl.decode_address(body) == rtnl.AddressInfo(7, vip.ip, 24, rtnl.IFA_F_NOPREFIXROUTE, 253, "eth1:vip",
                                                         ipaddress.ip_address("10.0.0.255"))


def test_an_address_delete_names_the_label_only() -> None:
    vip = ipaddress.ip_interface("10.0.0.1/24")
    hdr, body = split(rtnl.address_request(4, False, 7, vip, label="eth1:vip"))
    assert hdr[1] == rtnl.RTM_DELADDR
    attrs = nlmsg.parse_attrs(body[8:])
    assert attrs[rtnl.IFA_LABEL] == b"eth1:vip\0" and rtnl.IFA_BROADCAST not in attrs and rtnl.IFA_FLAGS not in attrs
    assert rtnl.IFADDRMSG.unpack_from(body)[2:4] == (0, 0)


def test_an_ipv6_noprefixroute_address_keeps_nodad() -> None:
    vip = ipaddress.ip_interface("fd00::7/64")
    body = payload(rtnl.address_request(1, True, 2, vip, noprefixroute=True))
    assert rtnl.IFADDRMSG.unpack_from(body)[2] == rtnl.IFA_F_NODAD
    flags = struct.unpack("=I", nlmsg.parse_attrs(body[8:])[rtnl.IFA_FLAGS])[0]
    assert flags == rtnl.IFA_F_NODAD | rtnl.IFA_F_NOPREFIXROUTE


ROUTES = [
    rtnl.Route(ipaddress.ip_network("10.8.0.0/16"), table=100, gateway=ipaddress.ip_address("192.0.2.254"),
               oif=3, prefsrc=ipaddress.ip_address("192.0.2.10"), metric=5),
    rtnl.Route(ipaddress.ip_network("0.0.0.0/0"), table=1000, gateway=ipaddress.ip_address("192.0.2.1")),
    rtnl.Route(ipaddress.ip_network("10.9.0.0/16"), type=rtnl.RTN_TYPES["blackhole"]),
    rtnl.Route(ipaddress.ip_network("10.7.0.0/24"), scope=rtnl.RT_SCOPE_LINK, oif=2),
    rtnl.Route(ipaddress.ip_network("2001:db8:1::/48"), gateway=ipaddress.ip_address("fe80::1"), oif=2, metric=9),
]


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_route_request_decodes_to_the_route(route: rtnl.Route) -> None:
    hdr, body = split(rtnl.route_request(9, True, route))
    assert hdr[1] == rtnl.RTM_NEWROUTE
    assert hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE  # prepend, as keepalived
    assert rtnl.decode_route(body) == route
    hdr, body = split(rtnl.route_request(10, False, route))
    assert hdr[1] == rtnl.RTM_DELROUTE and hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK
    assert rtnl.decode_route(body) == route  # a delete names the same attributes, protocol included


def test_route_attributes_are_the_kernels() -> None:
    route = ROUTES[0]
    body = payload(rtnl.route_request(1, True, route))
    assert rtnl.RTMSG.unpack_from(body) == (socket.AF_INET, 16, 0, 0, 100, rtnl.RTPROT_KEEPALIVED, 0,
                                            rtnl.RTN_UNICAST, 0)
    attrs = nlmsg.parse_attrs(body[rtnl.RTMSG.size:])
    assert attrs[rtnl.RTA_DST] == bytes([10, 8, 0, 0]) and attrs[rtnl.RTA_GATEWAY] == bytes([192, 0, 2, 254])
    assert attrs[rtnl.RTA_OIF] == struct.pack("=I", 3) and attrs[rtnl.RTA_PREFSRC] == bytes([192, 0, 2, 10])
    assert attrs[rtnl.RTA_PRIORITY] == struct.pack("=I", 5) and attrs[rtnl.RTA_TABLE] == struct.pack("=I", 100)
    big = payload(rtnl.route_request(1, True, ROUTES[1]))
    assert rtnl.RTMSG.unpack_from(big)[4] == 0  # a table above 255 is only in RTA_TABLE
    assert rtnl.RTA_DST not in nlmsg.parse_attrs(big[rtnl.RTMSG.size:])  # a default route has no destination
    assert rtnl.RTA_PRIORITY not in nlmsg.parse_attrs(payload(rtnl.route_request(1, True, ROUTES[2]))[12:])


RULES = [
    rtnl.Rule(4, 100, src=ipaddress.ip_network("10.0.0.0/24"), priority=1000),
    rtnl.Rule(4, 300, dst=ipaddress.ip_network("10.9.0.0/16"), iifname="eth0", oifname="eth1"),
    rtnl.Rule(6, 101, fwmark=7, fwmask=0xFF, priority=5),
    rtnl.Rule(6, 102, src=ipaddress.ip_network("2001:db8::/32"), dst=ipaddress.ip_network("2001:db8:9::/48")),
]


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_a_rule_request_decodes_to_the_rule(rule: rtnl.Rule) -> None:
    hdr, body = split(rtnl.rule_request(5, True, rule))
    assert hdr[1] == rtnl.RTM_NEWRULE
    assert hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE | nlmsg.NLM_F_EXCL
    assert rtnl.decode_rule(body) == rule
    hdr, body = split(rtnl.rule_request(6, False, rule))
    assert hdr[1] == rtnl.RTM_DELRULE and rtnl.decode_rule(body) == rule


def test_rule_attributes_are_the_kernels() -> None:
    body = payload(rtnl.rule_request(1, True, RULES[0]))
    assert rtnl.FIB_RULE_HDR.unpack_from(body) == (socket.AF_INET, 0, 24, 0, 100, 0, 0, rtnl.FR_ACT_TO_TBL, 0)
    attrs = nlmsg.parse_attrs(body[rtnl.FIB_RULE_HDR.size:])
    assert attrs[rtnl.FRA_SRC] == bytes([10, 0, 0, 0]) and attrs[rtnl.FRA_PRIORITY] == struct.pack("=I", 1000)
    assert attrs[rtnl.FRA_TABLE] == struct.pack("=I", 100) and attrs[rtnl.FRA_PROTOCOL] == bytes([18])
    assert rtnl.FRA_FWMARK not in attrs and rtnl.FRA_DST not in attrs
    names = nlmsg.parse_attrs(payload(rtnl.rule_request(1, True, RULES[1]))[12:])
    assert names[rtnl.FRA_IIFNAME] == b"eth0\0" and names[rtnl.FRA_OIFNAME] == b"eth1\0"


def test_route_and_rule_decoders_refuse_short_messages_and_skip_other_families() -> None:
    for decode in (rtnl.decode_route, rtnl.decode_rule):
        with pytest.raises(nlmsg.DecodeError):
            decode(b"\2\0\0")
        assert decode(bytes([socket.AF_PACKET]) + bytes(11)) is None
    bad = rtnl.RTMSG.pack(socket.AF_INET, 16, 0, 0, 254, 0, 0, 1, 0) + nlmsg.attr(rtnl.RTA_DST, bytes(16))
    with pytest.raises(nlmsg.DecodeError):
        rtnl.decode_route(bad)
