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
