"""The status snapshot and its text: what an operator needs to find an instance or a service."""

from __future__ import annotations

import ipaddress
import tomllib
from typing import Any

from director.config.load import parse_config
from director.daemon.status import ReconcileCounters, daemon_status, format_status
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
    assert lines[header].split()[:3] == ["INSTANCE", "INTERFACE", "VRID"] and lines[header].endswith("VIPS")
    row = lines[header + 1].split()
    assert row[:4] == ["VI_1", "eth0", "42", "INIT"] and row[-1] == "192.0.2.50/24,192.0.2.51/24"
