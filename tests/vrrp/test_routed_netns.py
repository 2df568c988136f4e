"""Routed unicast: two directors in different subnets with a router between them, so each
one's adverts arrive with a TTL one lower than they left with. Against directord and against
Debian's keepalived."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from director.config.toml_write import dumps
from scripts.labkit import PYTHON, Lab, require_root, sh, wait_for

A, B = "198.51.100.2", "203.0.113.2"
VIP = "192.0.2.100"


class Routed:
    """Nodes a and b, each on its own subnet, behind router r (a forwarding namespace)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.lab = tmp, Lab("rt")
        self.router = self.lab.netns("r")
        self.lab.sysctl("net.ipv4.ip_forward", "1", self.router)
        self.a, self.b = self.node("a", A, "198.51.100.1"), self.node("b", B, "203.0.113.1")
        self.procs: dict[str, subprocess.Popen] = {}

    def node(self, name: str, address: str, gateway: str) -> str:
        ns = self.lab.netns(name)
        self.lab.veth(ns, "eth0", f"{address}/24", bridge_ns=self.router, peer=f"r{name}",
                      peer_address=f"{gateway}/24")
        sh(["ip", "route", "add", "default", "via", gateway], ns=ns)
        return ns

    def start(self, ns: str, **instance: object) -> None:
        peer = B if ns == self.a else A
        first = {"name": "VI_1", "interface": "eth0", "vrid": 51, "version": 3, "advert_interval": "100ms",
                 "virtual_ips": [f"{VIP}/32"], "unicast_peers": [peer], **instance}
        path = self.tmp / f"{ns}.toml"
        path.write_text(dumps({"global": {"router_id": ns}, "vrrp_instance": [first]}))
        self.run(ns, [PYTHON, "-m", "vrrp", "-c", str(path), "--log-level", "debug"])

    def run(self, ns: str, argv: list[str]) -> None:
        with open(self.tmp / f"{ns}.log", "ab") as log:
            self.procs[ns] = self.lab.start(argv, ns=ns, stdout=log, stderr=subprocess.STDOUT)

    def log(self, ns: str) -> str:
        path = self.tmp / f"{ns}.log"
        return path.read_text() if path.exists() else ""

    def holders(self) -> list[str]:
        return [ns for ns in (self.a, self.b) if f"inet {VIP}/" in sh(["ip", "-4", "addr", "show", "eth0"], ns=ns)]

    def wait(self, cond: object, timeout: float) -> None:
        try:
            wait_for(cond, timeout, 0.02)  # type: ignore[arg-type]
        except TimeoutError:
            raise AssertionError(f"{self.log(self.a)}\n---\n{self.log(self.b)}") from None


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[Routed]:
    require_root()
    net = Routed(tmp_path)
    try:
        yield net
    finally:
        net.lab.close()


def test_a_routed_peer_is_followed_within_its_ttl_range(routed: Routed) -> None:
    """a's adverts leave with TTL 64 and reach b with 63, inside b's 60..63; b's leave with
    255 and reach a with 254, inside a's 254..255. One master; the other takes over."""
    routed.start(routed.a, priority=200, unicast_ttl=64, unicast_min_ttl=254)
    routed.start(routed.b, priority=100, unicast_min_ttl=60, unicast_max_ttl=63)
    routed.wait(lambda: routed.holders() == [routed.a] and "new=backup" in routed.log(routed.b), 10.0)
    time.sleep(1.0)  # ten adverts later: still one master, nothing dropped
    assert routed.holders() == [routed.a] and "bad_ttl" not in routed.log(routed.b), routed.log(routed.b)
    routed.procs[routed.a].send_signal(signal.SIGKILL)
    routed.wait(lambda: routed.holders() == [routed.a, routed.b], 2.0)  # a's VIP stays behind a crash


def test_an_advert_outside_the_range_is_dropped_as_bad_ttl(routed: Routed) -> None:
    """The same pair with b's default (255 only): a's adverts arrive with 254 and are dropped,
    so b becomes master too."""
    routed.start(routed.a, priority=200, unicast_min_ttl=254)
    routed.start(routed.b, priority=100)
    routed.wait(lambda: routed.holders() == [routed.a, routed.b], 10.0)
    routed.wait(lambda: "bad_ttl" in routed.log(routed.b), 2.0)


def test_routed_unicast_against_keepalived(routed: Routed) -> None:
    """keepalived (b, 100) with unicast_ttl 64 behind the router; directord (a, 200) accepts
    its adverts at 63 and keepalived follows ours; when directord dies keepalived takes over."""
    conf = routed.tmp / "ka.conf"
    conf.write_text("\n".join([
        "global_defs {", "  router_id ka_b", "  vrrp_version 3", "}",
        "vrrp_instance VI_1 {", "  state BACKUP", "  interface eth0", "  virtual_router_id 51",
        "  priority 100", "  advert_int 0.1", f"  unicast_src_ip {B}", "  unicast_ttl 64",
        "  unicast_peer {", f"    {A}", "  }", "  virtual_ipaddress {", f"    {VIP}/32 dev eth0", "  }", "}", ""]))
    routed.run(routed.b, ["keepalived", "-P", "-n", "-l", "-D", "-f", str(conf),
                          "-p", str(routed.tmp / "ka.pid"), "-r", str(routed.tmp / "ka-vrrp.pid")])
    routed.start(routed.a, priority=200, unicast_min_ttl=60, unicast_max_ttl=63)
    routed.wait(lambda: routed.holders() == [routed.a] and "Entering BACKUP" in routed.log(routed.b), 10.0)
    time.sleep(1.0)
    assert routed.holders() == [routed.a] and "bad_ttl" not in routed.log(routed.a), routed.log(routed.a)
    routed.procs[routed.a].send_signal(signal.SIGKILL)
    routed.wait(lambda: "Entering MASTER" in routed.log(routed.b), 3.0)
