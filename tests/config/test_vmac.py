"""use_vmac / vmac_interface / vmac_xmit_base: keepalived's VMAC keys, and check-config's lines about them."""

from __future__ import annotations

import tomllib

import pytest

from director.config.load import ConfigError, parse_config
from director.config.locate import SourceMap

HEAD = '[[vrrp_instance]]\nname = "VI_1"\ninterface = "eth0"\nvrid = 51\nvirtual_ips = ["{vip}"]\n'


def load(extra: str, vip: str = "192.0.2.10/24"):
    return parse_config(tomllib.loads(HEAD.format(vip=vip) + extra)).vrrp_instances[0]


def lines(extra: str, vip: str = "192.0.2.10/24") -> list[str]:
    source = HEAD.format(vip=vip) + extra
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(source), "f", SourceMap(source))
    return [line.removeprefix("f:") for line in info.value.lines]


def test_the_vmac_is_named_as_keepalived_names_it_and_carries_adverts_and_vips() -> None:
    vi = load("use_vmac = true\n")
    assert (vi.vmac_name, vi.advert_interface, vi.address_interface) == ("vrrp.51", "vrrp.51", "vrrp.51")
    vi = load('use_vmac = true\nvmac_interface = "vmac51"\nvmac_xmit_base = true\n')
    assert (vi.vmac_name, vi.advert_interface, vi.address_interface) == ("vmac51", "eth0", "vmac51")
    plain = load("")
    assert (plain.use_vmac, plain.vmac_name, plain.advert_interface, plain.address_interface) == (
        False, "", "eth0", "eth0")


def test_unicast_needs_vmac_xmit_base_as_in_keepalived() -> None:
    assert lines('use_vmac = true\nunicast_peers = ["192.0.2.2"]\n') == [
        '6: vrrp_instance "VI_1".use_vmac: with unicast_peers needs vmac_xmit_base = true (keepalived requires it)']
    assert load('use_vmac = true\nvmac_xmit_base = true\nunicast_peers = ["192.0.2.2"]\n').unicast_peers


def test_a_name_too_long_or_the_base_itself_is_refused_in_one_line() -> None:
    assert lines('use_vmac = true\nvmac_interface = "vrrp-far-too-long"\n') == [
        '7: vrrp_instance "VI_1".vmac_interface: "vrrp-far-too-long" is 17 bytes long; interface names are at most 15']
    assert lines('use_vmac = true\nvmac_interface = "eth0"\n') == [
        '7: vrrp_instance "VI_1".vmac_interface: "eth0" is the instance\'s interface: name a new macvlan']
    assert lines('use_vmac = true\nvmac_interface = "a b"\n') == [
        '7: vrrp_instance "VI_1".vmac_interface: "a b" is not a valid interface name']


def test_ipv6_vmac_loads() -> None:
    source = HEAD.format(vip="2001:db8::10/64") + "use_vmac = true\n"
    [vi] = parse_config(tomllib.loads(source), "f", SourceMap(source)).vrrp_instances
    assert (vi.family, vi.use_vmac, vi.vmac_name) == (6, True, "vrrp.51")


def test_vmac_keys_without_use_vmac_are_named() -> None:
    assert lines('vmac_xmit_base = true\nvmac_interface = "v"\n') == [
        '6: vrrp_instance "VI_1".vmac_xmit_base: has no effect without use_vmac = true',
        '7: vrrp_instance "VI_1".vmac_interface: has no effect without use_vmac = true']


def test_two_instances_cannot_share_a_vmac() -> None:
    source = (HEAD.format(vip="192.0.2.10/24") + "use_vmac = true\n"
              + HEAD.format(vip="198.51.100.10/24").replace('"VI_1"', '"VI_2"').replace('"eth0"', '"eth1"')
              + "use_vmac = true\n")
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(source), "f", SourceMap(source))
    assert [line.removeprefix("f:") for line in info.value.lines] == [
        '7: vrrp_instance "VI_2".vmac_interface: vrrp.51 is already used by an earlier vrrp_instance (line 1)']


def test_vrrp_strict_refuses_what_rfc_5798_has_no_room_for() -> None:
    """[global] vrrp_strict: each rule a line naming the key and why."""
    base = {"name": "VI_1", "interface": "eth0", "vrid": 1, "virtual_ips": ["192.0.2.10/24"]}
    parse_config({"global": {"vrrp_strict": True}, "vrrp_instance": [base]})  # a plain instance is fine
    bad = base | {"auth_type": "pass", "auth_pass": "secret", "version": 2, "unicast_peers": ["192.0.2.2"],
                  "preempt_delay": "10s", "use_vmac": True, "vmac_xmit_base": True, "virtual_ips": []}
    with pytest.raises(ConfigError) as info:
        parse_config({"global": {"vrrp_strict": True}, "vrrp_instance": [bad]}, "f")
    assert [line for line in info.value.lines if "vrrp_strict" in line] == [
        f'f: vrrp_instance "VI_1".{key}: not allowed with vrrp_strict: RFC 5798 {why}' for key, why in (
            ("auth_type", "has no authentication"), ("unicast_peers", "sends adverts to the multicast group only"),
            ("preempt_delay", "preempts at once"), ("vmac_xmit_base", "sends adverts from the virtual MAC"),
            ("virtual_ips", "needs at least one address"))]
