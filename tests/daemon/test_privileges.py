"""The capabilities `run` checks for before it starts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from director.config.load import parse_config
from director.daemon import privileges

VRRP = tomllib.loads('[[vrrp_instance]]\nname = "v"\ninterface = "eth0"\nvrid = 1\nvirtual_ips = ["192.0.2.1"]\n')
IPVS = tomllib.loads('[[virtual_server]]\nname = "w"\naddress = "192.0.2.1"\nport = 80\n')


def status(tmp_path: Path, mask: int) -> str:
    path = tmp_path / "status"
    path.write_text(f"Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t{mask:016x}\nCapBnd:\t000001ffffffffff\n")
    return str(path)


def test_vrrp_needs_raw_sockets_ipvs_only_netlink(tmp_path: Path) -> None:
    admin, raw = 1 << 12, 1 << 13
    assert privileges.missing(parse_config(VRRP), status(tmp_path, 0)) == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    assert privileges.missing(parse_config(VRRP), status(tmp_path, admin)) == ["CAP_NET_RAW"]
    assert privileges.missing(parse_config(VRRP), status(tmp_path, admin | raw)) == []
    assert privileges.missing(parse_config(IPVS), status(tmp_path, admin)) == []


def test_this_root_process_has_them() -> None:
    assert privileges.missing(parse_config(VRRP)) == []


def test_ping_checks_need_raw_sockets(tmp_path: Path) -> None:
    pinged = {"virtual_server": [{"name": "web", "address": "192.0.2.1", "port": 80,
                                  "real_server": [{"address": "10.0.0.1", "checks": [{"type": "ping"}]}]}]}
    assert privileges.missing(parse_config(pinged), status(tmp_path, 1 << 12)) == ["CAP_NET_RAW"]
