"""The status snapshot and its text: what an operator needs to find an instance or a service."""

from __future__ import annotations

import ipaddress
import tomllib
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from director.config.load import parse_config
from director.daemon.status import ReconcileCounters, daemon_status, format_status, service_status
from vrrp.live import Live, new_instance

CONFIG = """
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 42
virtual_ips = ["192.0.2.50/24", "192.0.2.51/24"]
"""


def vrrp_snapshot() -> tuple[Any, dict[str, Any]]:
    """The VRRP child's real per-instance view (no socket is touched to build it)."""
    config = parse_config(tomllib.loads(CONFIG))
    cfg = config.vrrp_instances[0]
    primary = ipaddress.IPv4Address("192.0.2.1")
    live = Live(cfg, new_instance(cfg, primary), ifindex=2, mac=b"\x02" * 6, primary=primary,
                sock=None, announcer=None)  # type: ignore[arg-type]
    return config, {"instances": {"VI_1": live.view()}}


def test_status_shows_interface_vrid_and_virtual_ips_in_json_and_text() -> None:
    config, vrrp = vrrp_snapshot()
    snapshot = daemon_status(config, started=1.0, reloaded=None, vrrp=vrrp, reconcile=ReconcileCounters(),
                             services=[])
    vi = snapshot["vrrp"]["instances"]["VI_1"]
    assert (vi["interface"], vi["vrid"], vi["virtual_ips"]) == ("eth0", 42, ["192.0.2.50/24", "192.0.2.51/24"])
    lines = format_status(snapshot).splitlines()
    header = lines.index("VRRP") + 1
    assert lines[header].split()[:3] == ["INSTANCE", "INTERFACE", "VRID"]
    assert lines[header].split()[-3:] == ["VIPS", "ALSO", "CARRIED"]
    row = lines[header + 1].split()
    assert row[:4] == ["VI_1", "eth0", "42", "INIT"] and row[-2:] == ["192.0.2.50/24,192.0.2.51/24", "-"]


def test_status_shows_the_vmac_and_what_else_moves_with_mastership() -> None:
    extra = ('excluded_ips = ["2001:db8::50/64"]\nuse_vmac = true\n'
             'virtual_routes = [{ to = "198.51.100.0/24", via = "192.0.2.254" }]\n')
    config = parse_config(tomllib.loads(CONFIG + extra))
    cfg = config.vrrp_instances[0]
    primary = ipaddress.IPv4Address("192.0.2.1")
    live = Live(cfg, new_instance(cfg, primary), ifindex=2, mac=b"\x02" * 6, primary=primary,
                sock=None, announcer=None)  # type: ignore[arg-type]
    snapshot = daemon_status(config, started=1.0, reloaded=None, vrrp={"instances": {"VI_1": live.view()}},
                             reconcile=ReconcileCounters(), services=[])
    vi = snapshot["vrrp"]["instances"]["VI_1"]
    assert (vi["vmac"], vi["excluded_ips"], vi["virtual_routes"]) == ("vrrp.42", ["2001:db8::50/64"], 1)
    text = format_status(snapshot)
    assert "eth0 (vrrp.42)" in text and "2001:db8::50/64, 1 route" in text


def test_every_epoch_time_has_an_iso_8601_twin() -> None:
    config, vrrp = vrrp_snapshot()
    vrrp["instances"]["VI_1"]["state_since"] = 1_700_000_000.25
    reconcile = ReconcileCounters(passes=1, last_pass_at=1_700_000_060.0)
    snapshot = daemon_status(config, started=1_700_000_000.0, reloaded=None, vrrp=vrrp, reconcile=reconcile,
                             services=[])
    assert snapshot["started"] == 1_700_000_000.0  # the float stays for scripts that do arithmetic
    assert snapshot["started_iso"] == "2023-11-14T22:13:20.000+00:00"
    assert snapshot["reloaded_iso"] is None
    assert datetime.fromisoformat(snapshot["now_iso"]).timestamp() == pytest.approx(snapshot["now"], abs=0.001)
    assert snapshot["vrrp"]["instances"]["VI_1"]["state_since_iso"] == "2023-11-14T22:13:20.250+00:00"
    assert snapshot["reconcile"]["last_pass_at_iso"] == "2023-11-14T22:14:20.000+00:00"


def test_real_server_check_times_have_iso_twins() -> None:
    config = parse_config(tomllib.loads(
        '[[virtual_server]]\nname = "web"\naddress = "192.0.2.10"\nport = 80\n'
        '[[virtual_server.real_server]]\naddress = "10.0.0.11"\n'))
    probe = SimpleNamespace(state="up", reason="", latency=0.002, last_checked=1_700_000_001.5, checks=3,
                            failures=0, since=1_700_000_000.0)
    entry = service_status(config.virtual_servers[0], {}, lambda key: probe, {}, {})["real_servers"][0]
    assert entry["checked_at_iso"] == "2023-11-14T22:13:21.500+00:00"
    assert entry["health_since_iso"] == "2023-11-14T22:13:20.000+00:00"
    unchecked = service_status(config.virtual_servers[0], {}, lambda key: None, {}, {})["real_servers"][0]
    assert unchecked["checked_at"] is None and unchecked["checked_at_iso"] is None
