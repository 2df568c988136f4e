"""check-config's warnings: configs that run but rarely do what was meant."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from director.config.advice import config_warnings
from director.config.load import parse_config

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


def warnings(on_this_host: bool = True, **values: str) -> list[str]:
    fields = {"extra_instance": "", "address": "192.0.2.10", "check": "tcp", "timeout": "1s", "command": ""} | values
    return config_warnings(parse_config(tomllib.loads(BASE.format(**fields))), on_this_host)


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
