"""What moves with mastership beside the advertised addresses: address options, excluded_ips,
virtual_routes and virtual_rules, as the loader reads them and check-config reports them."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from pathlib import Path

import pytest

from director.cli import main
from director.config.diff import vrrp_changes
from director.config.load import ConfigError, load_config
from director.config.model import VirtualAddress, VirtualRoute, VirtualRule

HEAD = """\
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
"""


def write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "directord.toml"
    path.write_text(HEAD + textwrap.dedent(body))
    return str(path)


def errors_of(tmp_path: Path, body: str) -> list[str]:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [line.removeprefix(path) for line in info.value.lines]


def test_table_entries_carry_their_options_and_virtual_ips_keeps_its_meaning(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
        virtual_ips = [
          { address = "10.0.0.1/24", dev = "eth1", label = "eth1:vip", scope = "link", broadcast = "10.0.0.255", \
noprefixroute = true },
          "10.0.0.2/24",
          { address = "10.0.0.3/24", broadcast = "+" },
        ]
        excluded_ips = ["2001:db8::5/64", { address = "10.0.1.9/32", label = "eth0:x" }]
        virtual_routes = [{ to = "10.8.0.0/16", via = "10.0.0.254", table = 100, metric = 5, src = "10.0.0.1" },
                          { to = "10.9.0.0/16", type = "blackhole" }]
        virtual_rules = [{ from = "10.0.0.0/24", table = 100, priority = 1000 },
                         { fwmark = 7, fwmask = 255, table = 101, family = "ipv6" }]
    """))
    vi = config.vrrp_instances[0]
    ip = ipaddress.ip_interface
    assert vi.virtual_ips == (ip("10.0.0.1/24"), ip("10.0.0.2/24"), ip("10.0.0.3/24"))  # the adverts' list
    assert vi.excluded_ips == (ip("2001:db8::5/64"), ip("10.0.1.9/32"))
    assert vi.family == 4
    assert [str(a) for a in vi.carried_addresses] == [
        "10.0.0.1/24 dev eth1 brd 10.0.0.255 scope link label eth1:vip noprefixroute",
        "10.0.0.2/24", "10.0.0.3/24 brd 10.0.0.255", "2001:db8::5/64", "10.0.1.9/32 label eth0:x"]
    assert vi.carried_addresses[0] == VirtualAddress(ip("10.0.0.1/24"), "eth1", ipaddress.IPv4Address("10.0.0.255"),
                                                     "link", "eth1:vip", True)
    assert len(vi.address_options) == 3  # the entries written as tables
    assert vi.virtual_routes == (
        VirtualRoute(ipaddress.ip_network("10.8.0.0/16"), via=ipaddress.ip_address("10.0.0.254"),
                     src=ipaddress.ip_address("10.0.0.1"), metric=5, table=100),
        VirtualRoute(ipaddress.ip_network("10.9.0.0/16"), type="blackhole"))
    assert vi.virtual_rules == (
        VirtualRule(100, from_=ipaddress.ip_network("10.0.0.0/24"), priority=1000),
        VirtualRule(101, fwmark=7, fwmask=255, family=6))
    assert [r.ip_family for r in vi.virtual_rules] == [4, 6]
    assert [str(r) for r in vi.virtual_routes + vi.virtual_rules] == [
        "10.8.0.0/16 via 10.0.0.254 src 10.0.0.1 metric 5 table 100", "blackhole 10.9.0.0/16",
        "from 10.0.0.0/24 priority 1000 table 100", "from all fwmark 0x7/0xff table 101"]


def test_plain_strings_need_no_options_and_code_built_configs_still_carry_their_vips(tmp_path: Path) -> None:
    vi = load_config(write(tmp_path, 'virtual_ips = ["192.0.2.10/24"]\n')).vrrp_instances[0]
    assert vi.address_options == () and vi.excluded_ips == () and vi.virtual_routes == vi.virtual_rules == ()
    assert vi.carried_addresses == (VirtualAddress(ipaddress.ip_interface("192.0.2.10/24")),)


def test_the_broadcast_minus_clears_the_host_bits(tmp_path: Path) -> None:
    path = write(tmp_path, 'virtual_ips = [{ address = "10.0.0.7/24", broadcast = "-" }]\n')
    vi = load_config(path).vrrp_instances[0]
    assert str(vi.carried_addresses[0].broadcast) == "10.0.0.0"


@pytest.mark.parametrize(("body", "expected"), [
    ('virtual_ips = [{ address = "10.0.0.1/24", dev = "eth1", label = "eth0:vip" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].label: "eth0:vip" must start with the device name: "eth1" or '
     '"eth1:NAME"'),
    ('virtual_ips = [{ address = "10.0.0.1/24", label = "eth1:vip" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].label: "eth1:vip" must start with the device name: "eth0" or '
     '"eth0:NAME"'),
    ('virtual_ips = [{ address = "10.0.0.1/24", label = "eth00" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].label: "eth00" must start with the device name: "eth0" or '
     '"eth0:NAME"'),
    ('virtual_ips = ["10.0.0.1"]\nexcluded_ips = [{ address = "10.0.0.2", label = "eth0:0123456789ab" }]\n',
     ':6: vrrp_instance "VI_1".excluded_ips[0].label: "eth0:0123456789ab" is longer than 15 bytes'),
    ('virtual_ips = [{ address = "2001:db8::1/64", label = "eth0" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].label: applies to IPv4 addresses only: IPv6 has no labels'),
    ('virtual_ips = [{ address = "2001:db8::1/64", broadcast = "+" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].broadcast: applies to IPv4 addresses only'),
    ('virtual_ips = [{ address = "2001:db8::1/64", scope = "link" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].scope: applies to IPv4 addresses only'),
    ('virtual_ips = [{ address = "10.0.0.1", scope = "moon" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].scope: "moon" is not one of global, site, link, host, nowhere'),
    ('virtual_ips = [{ address = "10.0.0.1", brd = "+" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].brd: unknown key'),
    ('virtual_ips = [{ dev = "eth1" }]\n', ':5: vrrp_instance "VI_1".virtual_ips[0].address: is required'),
    ('virtual_ips = [{ address = "10.0.0.1", dev = "eth 1" }]\n',
     ':5: vrrp_instance "VI_1".virtual_ips[0].dev: "eth 1" is not a valid interface name'),
    ('virtual_ips = [7]\n', ':5: vrrp_instance "VI_1".virtual_ips[0]: must be an address string or a table'),
    ('virtual_ips = ["10.0.0.1"]\nexcluded_ips = ["10.0.0.1/24"]\n',
     ':6: vrrp_instance "VI_1".excluded_ips[0]: 10.0.0.1 is already listed (in virtual_ips or excluded_ips)'),
    ('virtual_ips = ["10.0.0.1"]\nexcluded_ips = ["nope"]\n',
     ':6: vrrp_instance "VI_1".excluded_ips[0]: "nope" is not an address with optional /prefix'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.1/16", dev = "eth0" }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].to: "10.8.0.1/16" has host bits set'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16" }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].to: needs via or dev'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", type = "local" }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].dev: is required for a local route'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", type = "blackhole", via = "10.0.0.9" }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].via: does not apply to a blackhole route'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", via = "2001:db8::1" }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].via: 2001:db8::1 is not IPv4 like to = "10.8.0.0/16"'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", dev = "eth0", table = 0 }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].table: must be in 1..4294967295, got 0'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", dev = "eth0", type = "nat" }]\n',
     ':6: vrrp_instance "VI_1".virtual_routes[0].type: "nat" is not one of unicast, local, blackhole'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_rules = [{ from = "10.0.0.0/8" }]\n',
     ':6: vrrp_instance "VI_1".virtual_rules[0].table: is required'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_rules = [{ from = "10.0.0.0/8", to = "2001:db8::/32", table = 5 }]\n',
     ':6: vrrp_instance "VI_1".virtual_rules[0].to: mixes IPv4 and IPv6'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_rules = [{ from = "10.0.0.0/8", family = "ipv6", table = 5 }]\n',
     ':6: vrrp_instance "VI_1".virtual_rules[0].family: mixes IPv4 and IPv6'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_rules = [{ fwmask = 255, table = 5 }]\n',
     ':6: vrrp_instance "VI_1".virtual_rules[0].fwmask: needs fwmark'),
    ('virtual_ips = ["10.0.0.1"]\nvirtual_rules = [{ form = "10.0.0.0/8", table = 5 }]\n',
     ':6: vrrp_instance "VI_1".virtual_rules[0].form: unknown key (did you mean "from"?)'),
])
def test_each_mistake_is_one_line_naming_file_line_key_and_reason(tmp_path: Path, body: str, expected: str) -> None:
    lines = errors_of(tmp_path, body)
    assert any(line.startswith(expected) for line in lines), lines


def test_check_config_prints_the_label_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'virtual_ips = [{ address = "10.0.0.1/24", dev = "eth1", label = "bond0:vip" }]\n')
    assert main(["check-config", "--no-host-checks", "-c", path]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'{path}:5: vrrp_instance "VI_1".virtual_ips[0].label: "bond0:vip" must start with the device '
                   'name: "eth1" or "eth1:NAME"']


def test_a_reload_names_the_changed_route_as_ip_would(tmp_path: Path) -> None:
    old = load_config(write(tmp_path, 'virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", '
                                      'dev = "eth0" }]\n'))
    new = load_config(write(tmp_path, 'virtual_ips = ["10.0.0.1"]\nvirtual_routes = [{ to = "10.8.0.0/16", '
                                      'via = "10.0.0.9" }]\n'))
    assert vrrp_changes(old.vrrp_instances, new.vrrp_instances) == [
        "change vrrp_instance VI_1: virtual_routes +10.8.0.0/16 via 10.0.0.9 -10.8.0.0/16 dev eth0"]
    assert re.fullmatch(r"[^\n]+", vrrp_changes(old.vrrp_instances, new.vrrp_instances)[0])


def test_host_checks_name_a_missing_dev_of_an_address_or_route(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'virtual_ips = ["10.0.0.1", { address = "10.0.0.2", dev = "nosuchif1" }]\n'
                           'virtual_routes = [{ to = "10.8.0.0/16", dev = "nosuchif2" }, { to = "10.9.0.0/16", '
                           'dev = "lo" }]\n')
    Path(path).write_text(Path(path).read_text().replace('interface = "eth0"', 'interface = "lo"'))
    assert main(["check-config", "-c", path]) == 1
    assert [line for line in capsys.readouterr().err.splitlines() if "warning" not in line] == [
        f'{path}:5: vrrp_instance "VI_1".virtual_ips[1].dev: no interface named "nosuchif1" on this host',
        f'{path}:6: vrrp_instance "VI_1".virtual_routes[0].dev: no interface named "nosuchif2" on this host']
