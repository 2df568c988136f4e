"""The VMAC's link requests on bytes, what `judge` makes of an existing link, and the
`VmacTable`'s sysctls and ownership against fakes (the kernel side is test_vmac_netns.py)."""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

import pytest

import nlmsg
from director.config.model import VrrpInstanceConfig
from vrrp import rtnl
from vrrp.rtnl import LinkInfo
from vrrp.vmac import ALIAS, Sysctls, VmacTable, judge, vmac_of

VMAC = bytes.fromhex("00005e000133")


def split(msg: bytes) -> tuple[tuple[int, int, int, int, int], bytes]:
    hdr = struct.unpack_from("=IHHII", msg)
    assert hdr[0] == len(msg)
    return hdr, msg[16:]


def test_the_vmac_is_the_rfc_5798_mac_of_the_vrid_and_family() -> None:
    assert vmac_of(51) == VMAC and vmac_of(1).hex() == "00005e000101"
    assert vmac_of(51, 6).hex() == "00005e000233" and vmac_of(255, 6).hex() == "00005e0002ff"


def test_macvlan_request_creates_a_private_macvlan_with_the_vmac_on_its_parent_down() -> None:
    hdr, body = split(rtnl.macvlan_request(9, "vrrp.51", 2, VMAC))
    assert hdr[1] == rtnl.RTM_NEWLINK and hdr[3] == 9
    assert hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE | nlmsg.NLM_F_EXCL
    assert rtnl.IFINFOMSG.unpack_from(body) == (socket.AF_UNSPEC, 0, 0, 0, 0)  # flags 0: created down
    attrs = nlmsg.parse_attrs(body[rtnl.IFINFOMSG.size:])
    assert attrs[rtnl.IFLA_IFNAME] == b"vrrp.51\0"
    assert attrs[rtnl.IFLA_LINK] == struct.pack("=I", 2)
    assert attrs[rtnl.IFLA_ADDRESS] == VMAC
    info = nlmsg.parse_attrs(attrs[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"macvlan"
    data = nlmsg.parse_attrs(info[rtnl.IFLA_INFO_DATA])
    assert data[rtnl.IFLA_MACVLAN_MODE] == struct.pack("=I", rtnl.MACVLAN_MODE_PRIVATE)


def test_link_settings_request_sets_alias_and_no_ipv6_address_generation_only() -> None:
    hdr, body = split(rtnl.link_settings_request(3, 7, alias=ALIAS, addrgen_none=True))
    assert hdr[1] == rtnl.RTM_NEWLINK and hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK
    assert rtnl.IFINFOMSG.unpack_from(body) == (socket.AF_UNSPEC, 0, 7, 0, 0)  # change 0: flags untouched
    attrs = nlmsg.parse_attrs(body[rtnl.IFINFOMSG.size:])
    assert set(attrs) == {rtnl.IFLA_IFALIAS, rtnl.IFLA_AF_SPEC} and attrs[rtnl.IFLA_IFALIAS] == ALIAS.encode()
    inet6 = nlmsg.parse_attrs(nlmsg.parse_attrs(attrs[rtnl.IFLA_AF_SPEC])[socket.AF_INET6])
    assert inet6 == {rtnl.IFLA_INET6_ADDR_GEN_MODE: bytes([rtnl.IN6_ADDR_GEN_MODE_NONE])}
    _hdr, body = split(rtnl.link_settings_request(4, 7, addrgen_none=True))
    assert set(nlmsg.parse_attrs(body[rtnl.IFINFOMSG.size:])) == {rtnl.IFLA_AF_SPEC}  # an adopted link keeps its alias


def test_link_delete_request_names_the_index() -> None:
    hdr, body = split(rtnl.link_delete_request(4, 12))
    assert hdr[1] == rtnl.RTM_DELLINK and rtnl.IFINFOMSG.unpack_from(body)[2] == 12


def test_decode_link_reads_parent_kind_and_alias() -> None:
    info = nlmsg.attr(rtnl.IFLA_INFO_KIND, b"macvlan\0")
    payload = rtnl.IFINFOMSG.pack(0, 1, 5, rtnl.IFF_UP | rtnl.IFF_RUNNING, 0)
    payload += nlmsg.attr(rtnl.IFLA_IFNAME, b"vrrp.51\0") + nlmsg.attr(rtnl.IFLA_ADDRESS, VMAC)
    payload += nlmsg.attr(rtnl.IFLA_LINK, struct.pack("=I", 2)) + nlmsg.attr(rtnl.IFLA_LINKINFO, info)
    payload += nlmsg.attr(rtnl.IFLA_IFALIAS, ALIAS.encode())
    assert rtnl.decode_link(payload) == LinkInfo(5, "vrrp.51", VMAC, True, 2, "macvlan", ALIAS)


def test_judge_creates_adopts_or_refuses() -> None:
    assert judge(None, "vrrp.51", 2, VMAC).create
    ours = judge(LinkInfo(5, "vrrp.51", VMAC, True, 2, "macvlan", ALIAS), "vrrp.51", 2, VMAC)
    assert not ours.create and ours.owned  # an earlier run's: still ours to delete
    theirs = judge(LinkInfo(5, "vrrp.51", VMAC, True, 2, "macvlan"), "vrrp.51", 2, VMAC)
    assert not theirs.create and not theirs.owned  # adopted: never deleted
    for wrong in (LinkInfo(5, "vrrp.51", VMAC, True, 3, "macvlan"), LinkInfo(5, "vrrp.51", b"\2" * 6, True, 2,
                  "macvlan"), LinkInfo(5, "vrrp.51", VMAC, True, 2, "veth")):
        with pytest.raises(ValueError, match=r"vrrp\.51 exists but is not a macvlan"):
            judge(wrong, "vrrp.51", 2, VMAC)


class FakeAddrs:
    """The link calls `VmacTable` makes, on a dict of links."""

    def __init__(self, links: dict[str, LinkInfo] | None = None) -> None:
        self.links = dict(links or {})
        self.calls: list[tuple] = []

    def link(self, name: str) -> LinkInfo | None:
        return self.links.get(name)

    def add_macvlan(self, name: str, parent: int, mac: bytes) -> None:
        self.calls.append(("add", name))
        self.links[name] = LinkInfo(9, name, mac, False, parent, "macvlan")

    def set_link(self, index: int, *, alias: str | None = None, addrgen_none: bool = False) -> None:
        self.calls.append(("set", index, alias, addrgen_none))

    def set_up(self, index: int, up: bool = True) -> None:
        self.calls.append(("up", index))

    def delete_link(self, index: int) -> bool:
        self.calls.append(("del", index))
        return True

    def add(self, index: int, address: object) -> bool:
        self.calls.append(("addr", index, str(address)))
        return True

    def remove(self, index: int, address: object) -> bool:
        self.calls.append(("unaddr", index, str(address)))
        return True


def sysctl_tree(tmp_path: Path, *devs: str) -> Sysctls:
    for dev in ("all", "default", *devs):
        (tmp_path / dev).mkdir()
        for key in ("arp_ignore", "arp_announce", "rp_filter"):
            (tmp_path / dev / key).write_text("0\n")
    return Sysctls(tmp_path)


BASE = LinkInfo(2, "eth0", b"\2" * 6, True)
CFG = VrrpInstanceConfig("VI_1", "eth0", 51, use_vmac=True)


def test_a_created_vmac_is_deleted_and_the_base_sysctls_come_back(tmp_path: Path) -> None:
    sysctls = sysctl_tree(tmp_path, "eth0", "vrrp.51")
    (tmp_path / "eth0" / "arp_ignore").write_text("2\n")
    addrs = FakeAddrs()
    table = VmacTable(addrs, sysctls)  # type: ignore[arg-type]
    link = table.open(CFG, BASE)
    assert link.mac == VMAC and addrs.calls == [("add", "vrrp.51"), ("set", 9, ALIAS, True), ("up", 9)]
    assert (sysctls.read("eth0", "arp_ignore"), sysctls.read("eth0", "arp_announce")) == ("1", "2")
    assert (sysctls.read("vrrp.51", "arp_ignore"), sysctls.read("vrrp.51", "rp_filter")) == ("1", "0")
    table.open(CFG, BASE)  # a second instance on the same VMAC
    table.release("vrrp.51")
    assert ("del", 9) not in addrs.calls and sysctls.read("eth0", "arp_ignore") == "1"
    table.release("vrrp.51")
    assert addrs.calls[-1] == ("del", 9)
    assert (sysctls.read("eth0", "arp_ignore"), sysctls.read("eth0", "arp_announce")) == ("2", "0")


def test_an_adopted_vmac_stays(tmp_path: Path) -> None:
    sysctls = sysctl_tree(tmp_path, "eth0", "vrrp.51")
    addrs = FakeAddrs({"vrrp.51": LinkInfo(9, "vrrp.51", VMAC, True, 2, "macvlan")})
    table = VmacTable(addrs, sysctls)  # type: ignore[arg-type]
    table.open(CFG, BASE)
    table.close()
    assert [c for c in addrs.calls if c[0] in ("add", "del")] == []
    assert sysctls.read("eth0", "arp_ignore") == "0"


def test_a_foreign_link_of_that_name_fails_the_instance_and_changes_nothing(tmp_path: Path) -> None:
    sysctls = sysctl_tree(tmp_path, "eth0", "vrrp.51")
    addrs = FakeAddrs({"vrrp.51": LinkInfo(9, "vrrp.51", b"\4" * 6, True, 0, "dummy")})
    with pytest.raises(OSError, match=r"vrrp_instance VI_1: vrrp\.51 exists but is not a macvlan"):
        VmacTable(addrs, sysctls).open(CFG, BASE)  # type: ignore[arg-type]
    assert addrs.calls == [] and sysctls.read("eth0", "arp_ignore") == "0"


def test_a_set_all_rp_filter_is_moved_onto_each_device_as_keepalived_does(tmp_path: Path) -> None:
    sysctls = sysctl_tree(tmp_path, "eth0", "eth1", "vrrp.51")
    (tmp_path / "all" / "rp_filter").write_text("1\n")
    (tmp_path / "eth1" / "rp_filter").write_text("2\n")
    table = VmacTable(FakeAddrs(), sysctls)  # type: ignore[arg-type]
    table.open(CFG, BASE)
    assert {dev: sysctls.read(dev, "rp_filter") for dev in sysctls.devices()} == {
        "all": "0", "default": "1", "eth0": "1", "eth1": "2", "vrrp.51": "0"}
    table.release("vrrp.51")
    assert {dev: sysctls.read(dev, "rp_filter") for dev in ("all", "default", "eth0", "eth1")} == {
        "all": "1", "default": "0", "eth0": "0", "eth1": "2"}


def test_an_unset_all_rp_filter_is_left_alone(tmp_path: Path) -> None:
    sysctls = sysctl_tree(tmp_path, "eth0", "vrrp.51")
    (tmp_path / "eth0" / "rp_filter").write_text("1\n")
    table = VmacTable(FakeAddrs(), sysctls)  # type: ignore[arg-type]
    table.open(CFG, BASE)
    assert (sysctls.read("all", "rp_filter"), sysctls.read("eth0", "rp_filter")) == ("0", "1")
    table.close()
    assert sysctls.read("eth0", "rp_filter") == "1"


CFG6 = VrrpInstanceConfig("VI_6", "eth0", 51, use_vmac=True, virtual_ips=(ipaddress.ip_interface("fd00::100/64"),))
LL = ipaddress.ip_address("fe80::2")


def test_an_ipv6_vmac_gets_the_base_link_local_and_leaves_the_ipv4_sysctls_alone(tmp_path: Path) -> None:
    addrs = FakeAddrs()
    table = VmacTable(addrs, sysctl_tree(tmp_path, "eth0"))  # type: ignore[arg-type]
    with pytest.raises(OSError, match="needs the link-local address of eth0"):
        table.open(CFG6, BASE, None)
    link = table.open(CFG6, BASE, LL)
    assert link.mac == vmac_of(51, 6)
    assert addrs.calls == [("add", "vrrp.51"), ("set", 9, ALIAS, True), ("up", 9), ("addr", 9, "fe80::2/64")]
    assert all((tmp_path / d / k).read_text() == "0\n" for d in ("all", "eth0") for k in ("arp_ignore", "rp_filter"))
    table.release("vrrp.51")
    assert addrs.calls[-1] == ("del", 9)


def test_an_adopted_ipv6_vmac_loses_only_the_link_local_we_added(tmp_path: Path) -> None:
    addrs = FakeAddrs({"vrrp.51": LinkInfo(9, "vrrp.51", vmac_of(51, 6), True, 2, "macvlan")})
    table = VmacTable(addrs, sysctl_tree(tmp_path, "eth0"))  # type: ignore[arg-type]
    table.open(CFG6, BASE, LL)
    table.release("vrrp.51")
    assert addrs.calls[-1] == ("unaddr", 9, "fe80::2/64") and ("del", 9) not in addrs.calls
