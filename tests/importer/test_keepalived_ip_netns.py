"""The import is exact where it says so: keepalived with a keepalived.conf and directord with its
import, each alone in a namespace of the same shape, put the same addresses, routes and rules on
the host when master (read back with `ip -j`), and both take them all off when they stop."""

from __future__ import annotations

import json
import signal
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from director.config.toml_write import dumps
from director.importer.cli import INLINE_KEYS, render, sort_unmapped
from director.importer.keepalived import convert
from scripts.labkit import DIRECTORD, Lab, require_root, sh, wait_for

CONF = """\
global_defs {
    router_id ka1
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 255
    advert_int 1
    virtual_ipaddress {
        192.0.2.10/24
        10.50.0.1/24 dev eth1 label eth1:vip scope link brd + noprefixroute
        10.51.0.1/24 brd 10.51.0.255 label eth0:two no_track
    }
    virtual_ipaddress_excluded {
        fd00:50::1/64
        192.0.2.101/32 label eth0:ex
    }
    virtual_routes {
        src 192.0.2.10 to 10.60.0.0/16 via 192.0.2.254 table 100 metric 5
        blackhole 10.61.0.0/16 table 100
        10.62.0.0/24 dev eth1
        fd00:61::/48 dev eth1
        default gw 192.0.2.254 table 200
        unreachable 10.65.0.0/24
    }
    virtual_rules {
        from 10.50.0.0/24 table 100 priority 1000
        fwmark 7 table 100 priority 1001
        to 10.62.0.0/24 iif eth0 table 100 priority 1002
        from 10.66.0.0/24 table 100
        from 10.67.0.0/24 lookup 101
    }
}
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root()
    with Lab("dvk-") as made:
        yield made


def node(lab: Lab, name: str) -> str:
    """A namespace with eth0 (192.0.2.1/24) and eth1, each a veth whose peer stays inside."""
    ns = lab.netns(name)
    for dev in ("eth0", "eth1"):
        sh(["ip", "link", "add", dev, "type", "veth", "peer", "name", f"{dev}p"], ns=ns)
        for end in (dev, f"{dev}p"):
            sh(["ip", "link", "set", end, "up"], ns=ns)
    sh(["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"], ns=ns)
    return ns


def view(ns: str) -> dict[str, list]:
    """The carried addresses, routes and rules as `ip` shows them, comparable between namespaces."""
    def ip(*args: str) -> list[dict]:
        return json.loads(sh(["ip", "-j", "-d", *args], ns=ns) or "[]")

    addresses = sorted(
        (link["ifname"], a["local"], a["prefixlen"], a.get("scope"), a.get("label"), a.get("broadcast"),
         bool(a.get("noprefixroute")), bool(a.get("nodad")))
        for link in ip("addr", "show") for a in link["addr_info"]
        if a["local"] not in ("127.0.0.1", "::1", "192.0.2.1") and not a["local"].startswith("fe80:"))
    routes = sorted(
        (r.get("type"), r["dst"], r.get("gateway"), r.get("dev"), r.get("table"), r.get("prefsrc"), r.get("metric"),
         r.get("scope"))
        for family in ("-4", "-6") for r in ip(family, "route", "show", "table", "all")
        if r.get("protocol") == "keepalived")
    rules = sorted(
        tuple(sorted((k, str(v)) for k, v in r.items()))
        for family in ("-4", "-6") for r in ip(family, "rule", "show") if r.get("protocol") == "keepalived")
    return {"addresses": addresses, "routes": routes, "rules": rules}


def full(ns: str) -> bool:
    now = view(ns)
    return len(now["addresses"]) == 5 and len(now["routes"]) == 6 and len(now["rules"]) == 5


def directord_config(tmp: Path, source: Path) -> Path:
    conv = convert(str(source))
    sort_unmapped(conv)
    assert conv.unmapped == []  # nothing in CONF is flagged: all of it carries over
    data = tomllib.loads(render(conv, str(source), "keepalived"))
    data["global"] |= {"control_socket": str(tmp / "d.sock"), "state_dir": str(tmp / "state"), "metrics_listen": ""}
    path = tmp / "directord.toml"
    path.write_text(dumps(data, inline_keys=INLINE_KEYS))
    return path


def test_directord_puts_on_what_keepalived_puts_on_and_takes_it_all_off(lab: Lab, tmp_path: Path) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text(CONF)
    ka_ns, dd_ns = node(lab, "ka"), node(lab, "dd")
    keepalived = lab.start(["keepalived", "-P", "-n", "-l", "-D", "-f", str(source), "-p", str(tmp_path / "ka.pid"),
                            "-r", str(tmp_path / "ka-vrrp.pid")], ns=ka_ns, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    directord = lab.start([DIRECTORD, "run", "-c", str(directord_config(tmp_path, source))], ns=dd_ns,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: full(ka_ns) and full(dd_ns), 15, what="both masters with everything on")
    theirs, ours = view(ka_ns), view(dd_ns)
    assert ours["addresses"] == theirs["addresses"]
    assert ours["routes"] == theirs["routes"]
    assert ours["rules"] == theirs["rules"]
    for proc in (keepalived, directord):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert view(ka_ns) == view(dd_ns) == {"addresses": [], "routes": [], "rules": []}
