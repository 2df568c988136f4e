"""Real traffic through the VIP after `directord apply`: NAT and DR, scheduler distribution, drain.

A client namespace talks to real HTTP servers (busybox httpd) in their own
namespaces through a virtual service directord programmed (runs in the VM rig).
"""

from __future__ import annotations

import collections
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.labkit import BUSYBOX, Lab, NatLab, dr_real_server, fetch, httpd_argv, sh, wait_for
from tests.kernel_util import apply_json, ipvsadm


def distribution(ns: str, url: str, count: int) -> collections.Counter:
    return collections.Counter(fetch(ns, url) for _ in range(count))


def nat_config(tmp_path: Path, scheduler: str, weights: tuple[int, int], extra: str = "") -> Path:
    servers = "".join(
        f'[[virtual_server.real_server]]\naddress = "10.0.0.1{i + 1}"\nweight = {w}\n'
        for i, w in enumerate(weights) if w is not None
    )
    path = tmp_path / "nat.toml"
    path.write_text(f'[[virtual_server]]\nname = "web"\naddress = "198.51.100.10"\nport = 80\n'
                    f'scheduler = "{scheduler}"\nmethod = "nat"\n{extra}{servers}')
    return path


def test_nat_round_robin_and_weighted_distribution(nat_lab: NatLab, tmp_path: Path) -> None:
    client = nat_lab.client
    assert apply_json(nat_config(tmp_path, "rr", (1, 1)), tmp_path / "state")["returncode"] == 0
    assert distribution(client, "http://198.51.100.10/", 10) == {"rs1": 5, "rs2": 5}
    assert apply_json(nat_config(tmp_path, "wrr", (3, 1)), tmp_path / "state")["returncode"] == 0
    assert distribution(client, "http://198.51.100.10/", 12) == {"rs1": 9, "rs2": 3}
    stats = ipvsadm("-Ln", "--stats")
    assert "198.51.100.10:80" in stats


def test_nat_quiesced_server_gets_no_new_connections(nat_lab: NatLab, tmp_path: Path) -> None:
    client = nat_lab.client
    apply_json(nat_config(tmp_path, "rr", (1, 0)), tmp_path / "state")
    assert distribution(client, "http://198.51.100.10/", 6) == {"rs1": 6}


def test_removed_server_drains_with_a_live_connection_then_goes(nat_lab: NatLab, tmp_path: Path) -> None:
    client = nat_lab.client
    state = tmp_path / "state"
    apply_json(nat_config(tmp_path, "rr", (0, 1)), state)  # every new connection goes to rs2
    # A long-lived connection held open to rs2 (busybox nc keeps it while stdin stays open).
    holder = nat_lab.lab.start([BUSYBOX, "nc", "198.51.100.10", "80"], ns=client, stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL)
    wait_for(lambda: _active(ipvsadm("-Ln"), "10.0.0.12:80") == 1, 20, what="the held connection")
    only_rs1 = nat_config(tmp_path, "rr", (1, None), extra='drain_timeout = "20s"\n')
    first = apply_json(only_rs1, state)
    assert [c["action"] for c in first["changes"]] == ["change", "drain"]
    assert "-a -t 198.51.100.10:80 -r 10.0.0.12:80 -m -w 0" in _rules()
    waiting = apply_json(only_rs1, state)
    # Still busy: no write, and the wait is reported (earlier tests' TIME_WAIT entries may add to the count).
    assert waiting["changes"] == [] and "draining" in waiting["waiting"][0], waiting
    assert distribution(client, "http://198.51.100.10/", 4) == {"rs1": 4}
    wait_for(lambda: not apply_json(only_rs1, state)["waiting"], 30, interval=1, what="drain timeout")
    assert not any("10.0.0.12" in line for line in _rules())
    holder.kill()


def test_a_wall_clock_step_does_not_end_a_drain(nat_lab: NatLab, tmp_path: Path) -> None:
    """The drain counts on the steady clock: setting the clock an hour ahead (NTP after a
    bad RTC, an admin) neither ends it nor lets `apply` remove the busy server. The clock
    stepped is the VM's own."""
    state = tmp_path / "state"
    apply_json(nat_config(tmp_path, "rr", (0, 1)), state)
    holder = nat_lab.lab.start([BUSYBOX, "nc", "198.51.100.10", "80"], ns=nat_lab.client, stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL)
    wait_for(lambda: _active(ipvsadm("-Ln"), "10.0.0.12:80") == 1, 20, what="the held connection")
    only_rs1 = nat_config(tmp_path, "rr", (1, None), extra='drain_timeout = "10m"\n')
    assert [c["action"] for c in apply_json(only_rs1, state)["changes"]] == ["change", "drain"]
    _step_clock(3600)
    try:
        after = apply_json(only_rs1, state)
        assert after["changes"] == [] and "draining" in after["waiting"][0], after
        assert "-a -t 198.51.100.10:80 -r 10.0.0.12:80 -m -w 0" in _rules()
    finally:
        _step_clock(-3600)
        holder.kill()


def _step_clock(seconds: int) -> None:
    sh(["date", "-u", "-s", f"@{int(time.time()) + seconds}"])


def _rules() -> set[str]:
    return {line.strip() for line in ipvsadm("-Sn").splitlines()}


def _active(listing: str, endpoint: str) -> int:
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == endpoint:
            return int(parts[4])
    return -1


@pytest.fixture
def dr_lab(tmp_path: Path) -> Iterator[Lab]:
    """One L2 segment: client .2, director .1 + VIP .10, rs1 .11 and rs2 .12 with the VIP on lo."""
    ipvsadm("-C")
    with Lab("dtd-") as lab:
        bridge = lab.bridge("br", address="192.0.2.1/24")
        sh(["ip", "addr", "add", "192.0.2.10/32", "dev", bridge])
        client = lab.netns("client")
        lab.veth(client, "eth0", "192.0.2.2/24", bridge=bridge)
        for index in (1, 2):
            rs = lab.netns(f"rs{index}")
            dr_real_server(rs, "192.0.2.10")
            lab.veth(rs, "eth0", f"192.0.2.1{index}/24", bridge=bridge)
            lab.start(httpd_argv(tmp_path / f"rs{index}", f"rs{index}"), ns=rs)
            wait_for(lambda i=index: fetch(client, f"http://192.0.2.1{i}/") == f"rs{i}", 30, what="httpd")
        yield lab
    ipvsadm("-C")


def test_direct_routing_round_robin(dr_lab: Lab, tmp_path: Path) -> None:
    client = dr_lab.name("client")
    config = tmp_path / "dr.toml"
    config.write_text(textwrap.dedent("""
        [[virtual_server]]
        name = "web"
        address = "192.0.2.10"
        port = 80
        scheduler = "rr"
        method = "dr"
          [[virtual_server.real_server]]
          address = "192.0.2.11"
          [[virtual_server.real_server]]
          address = "192.0.2.12"
    """))
    assert apply_json(config, tmp_path / "state")["returncode"] == 0
    assert "-a -t 192.0.2.10:80 -r 192.0.2.11:80 -g -w 1" in _rules()
    assert distribution(client, "http://192.0.2.10/", 10) == {"rs1": 5, "rs2": 5}
