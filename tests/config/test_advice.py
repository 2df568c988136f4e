"""check-config's warnings: configs that run but rarely do what was meant."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path

from director.config.advice import config_warnings
from director.config.load import parse_config
from director.config.locate import SourceMap
from director.config.problems import render

BASE = """
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 1
priority = 100
virtual_ips = ["192.0.2.10/24"]
{extra_instance}
[[virtual_server]]
name = "web"
address = "{address}"
port = 80
[virtual_server.check]
type = "{check}"
interval = "2s"
timeout = "{timeout}"
{command}
[[virtual_server.real_server]]
address = "192.0.2.20"
"""


ETH0 = {"eth0": [ipaddress.ip_interface("192.0.2.1/24"), ipaddress.ip_interface("fe80::1/64")]}


def warnings(on_this_host: bool = True, addresses: dict | None = None, **values: str) -> list[str]:
    """The warnings as check-config prints them, without the file name."""
    fields = {"extra_instance": "", "address": "192.0.2.10", "check": "tcp", "timeout": "1s", "command": ""} | values
    text = BASE.format(**fields)
    data = tomllib.loads(text)
    host = (lambda: ETH0 if addresses is None else addresses) if on_this_host else None
    problems = config_warnings(parse_config(data), host)
    return [line.removeprefix("f:").partition(": ")[2] for line in render(problems, "f", data, SourceMap(text))]


def test_a_sound_config_has_no_warnings() -> None:
    assert warnings() == []


def test_timeout_longer_than_interval() -> None:
    assert warnings(timeout="3s") == ['virtual_server "web".check.timeout: 3s is longer than interval 2s, so a slow '
                                      "server is probed again before its last probe ends"]


def test_no_health_checking_is_said() -> None:
    assert warnings(check="none", timeout="1s")[0].startswith('virtual_server "web": no health checking')


def test_a_service_address_that_no_instance_floats() -> None:
    assert warnings(address="192.0.2.99") == [
        'virtual_server "web".address: 192.0.2.99 is no VRRP instance\'s VIP, so this director serves it '
        "whatever its VRRP state"]


def test_one_vip_in_two_instances() -> None:
    second = ('[[vrrp_instance]]\nname = "VI_2"\ninterface = "eth0"\nvrid = 2\npriority = 100\n'
              'virtual_ips = ["192.0.2.10/24"]\n')
    assert warnings(extra_instance=second) == [
        'vrrp_instance "VI_2".virtual_ips: 192.0.2.10 is also a VIP of vrrp_instance "VI_1"; '
        "the two instances fight over it"]


def test_exec_programs_must_exist_and_be_executable(tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o644)
    missing = tmp_path / "missing"
    assert warnings(check="exec", command=f'command = ["{missing}"]') == [
        f'virtual_server "web".check.command: {missing} does not exist']
    assert warnings(check="exec", command=f'command = ["{script}"]') == [
        f'virtual_server "web".check.command: {script} is not an executable file']
    assert warnings(on_this_host=False, check="exec", command=f'command = ["{missing}"]') == []
    os.chmod(script, 0o755)
    assert warnings(check="exec", command=f'command = ["{script}"]') == []


def test_a_vip_outside_every_subnet_of_its_interface() -> None:
    elsewhere = {"eth0": [ipaddress.ip_interface("198.51.100.1/24"), ipaddress.ip_interface("10.1.0.1/16")]}
    assert warnings(addresses=elsewhere) == [
        'vrrp_instance "VI_1".virtual_ips: 192.0.2.10 is outside every subnet of eth0 (198.51.100.0/24, 10.1.0.0/16)']
    assert warnings(on_this_host=False, addresses=elsewhere) == []


def test_the_vip_itself_on_the_interface_is_no_subnet() -> None:
    """A master holds its VIP: that address must not make the VIP look in-subnet."""
    master = {"eth0": [ipaddress.ip_interface("192.0.2.10/24"), ipaddress.ip_interface("198.51.100.1/24")]}
    assert len(warnings(addresses=master)) == 1


def test_an_interface_without_addresses_of_the_family_has_no_subnets_to_judge() -> None:
    """No subnet warning; the one warning is that adverts have no source (next test)."""
    assert len(warnings(addresses={"eth0": [ipaddress.ip_interface("2001:db8::1/64")]})) == 1
    assert warnings(addresses={}) == []  # no eth0 at all: an error of host_problems, not a warning


def test_an_interface_with_no_ipv4_address_of_its_own_cannot_send_adverts() -> None:
    only_the_vip = {"eth0": [ipaddress.ip_interface("192.0.2.10/24")]}
    expected = ['vrrp_instance "VI_1".interface: eth0 has no IPv4 address of its own (beside the VIPs) '
                "to send adverts from; the instance will not start until it has one (or set unicast_src)"]
    assert warnings(addresses=only_the_vip) == expected
    assert warnings(addresses={"eth0": []}) == expected
    assert warnings(addresses={"eth0": [ipaddress.ip_interface("192.0.2.2/24")]}) == []


def test_warnings_carry_the_line_of_the_key() -> None:
    text = BASE.format(extra_instance="", address="192.0.2.99", check="tcp", timeout="3s", command="")
    data = tomllib.loads(text)
    lines = render(config_warnings(parse_config(data)), "f", data, SourceMap(text), "warning: ")
    address_line = text.splitlines().index('address = "192.0.2.99"') + 1
    timeout_line = text.splitlines().index('timeout = "3s"') + 1
    assert lines == [f'f:{address_line}: warning: virtual_server "web".address: 192.0.2.99 is no VRRP instance\'s '
                     "VIP, so this director serves it whatever its VRRP state",
                     f'f:{timeout_line}: warning: virtual_server "web".check.timeout: 3s is longer than interval 2s, '
                     "so a slow server is probed again before its last probe ends"]


def test_https_without_tls_verify_is_said_and_an_explicit_choice_is_not() -> None:
    assert warnings(check="https") == ['virtual_server "web".check: https without tls_verify: the real server\'s '
                                       "certificate is not verified; set tls_verify = true to verify it, or false "
                                       "to say so"]
    for choice in ("true", "false"):
        assert warnings(check="https", command=f"tls_verify = {choice}") == []
