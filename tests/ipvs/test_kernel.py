"""NetlinkIpvs against a real kernel, cross-checked with ipvsadm's independent view.

Runs in the VM rig only (marker `kernel`):

    scripts/vm-run -- .venv/bin/pytest -m kernel tests/director/test_ipvs_kernel.py

Every test starts and ends with an empty table (`ipvsadm -C`; the VM is
throwaway). Without IPVS the fixture raises IpvsUnavailable: the tests fail.
"""

from __future__ import annotations

import errno
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from director.ipvs.kernel import NetlinkIpvs
from director.ipvs.model import (
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    AddDest,
    AddService,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    ServiceKey,
    ServiceSpec,
    SyncDaemon,
    Timeouts,
)
from scripts.labkit import sh
from tests.kernel_util import ipvsadm

SYNC_IFACE = "dsync1"
SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
              "twos"]
FORWARD = {"nat": "Masq", "dr": "Route", "tun": "Tunnel", "local": "Local"}
V4 = ServiceKey(4, "tcp", "192.0.2.10", 80)
V6 = ServiceKey(6, "tcp", "2001:db8::10", 80)


def ipvsadm_name(key: ServiceKey) -> str:
    if key.fwmark:
        return f"FWM {key.fwmark}" + (" IPv6" if key.family == 6 else "")
    host = f"[{key.address}]" if key.family == 6 else key.address
    return f"{key.protocol.upper()} {host}:{key.port}"


def view(*extra: str) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """`ipvsadm -Ln [extra]` as {service name: (rest of line, {dest: columns})}."""
    table: dict[str, tuple[str, dict[str, list[str]]]] = {}
    current = ""
    for line in ipvsadm("-Ln", *extra).splitlines()[3:]:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "->":
            table[current][1][parts[1]] = parts[2:]
            continue
        if parts[0] == "FWM":
            ipv6 = len(parts) > 2 and parts[2] == "IPv6"
            current = f"FWM {parts[1]}" + (" IPv6" if ipv6 else "")
            rest = parts[3:] if ipv6 else parts[2:]
        else:
            current, rest = f"{parts[0]} {parts[1]}", parts[2:]
        table[current] = (" ".join(rest), {})
    return table


@pytest.fixture
def kernel() -> Iterator[NetlinkIpvs]:
    ipvsadm("-C")
    backend = NetlinkIpvs()
    try:
        yield backend
    finally:
        backend.close()
        ipvsadm("-C")


def add(kernel: NetlinkIpvs, *ops: object) -> None:
    assert kernel.execute(list(ops)) == []  # type: ignore[arg-type]


def test_reads_a_table_made_by_ipvsadm(kernel: NetlinkIpvs) -> None:
    ipvsadm("-A", "-t", "192.0.2.10:80", "-s", "wrr", "-p", "120", "-M", "255.255.0.0")
    ipvsadm("-a", "-t", "192.0.2.10:80", "-r", "10.0.0.11:8080", "-m", "-w", "3", "-x", "9", "-y", "2")
    ipvsadm("-A", "-f", "5", "-6", "-s", "sh", "-b", "sh-port")
    table = kernel.dump()
    assert table[V4].spec == ServiceSpec(V4, "wrr", SVC_F_PERSISTENT, 120, 16)
    dest = DestKey(4, "10.0.0.11", 8080)
    assert table[V4].dests[dest].spec == DestSpec(dest, "nat", 3, 9, 2)
    fwm = ServiceKey(6, "", "", 0, 5)
    assert table[fwm].spec == ServiceSpec(fwm, "sh", SVC_F_SCHED2, 0, 128)


def module_exists(name: str) -> bool:
    return subprocess.run(["modinfo", name], capture_output=True).returncode == 0


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler(kernel: NetlinkIpvs, scheduler: str) -> None:
    op = AddService(ServiceSpec(V4, scheduler))
    errors = kernel.execute([op])
    if not module_exists(f"ip_vs_{scheduler}"):
        # twos arrived in Linux 6.3: an older kernel must say so, per op.
        assert [(e.op, e.errno) for e in errors] == [(op, errno.ENOENT)]
        assert view() == {}
        return
    assert errors == []
    assert view()[ipvsadm_name(V4)][0] == scheduler
    assert kernel.dump()[V4].spec.scheduler == scheduler


@pytest.mark.parametrize(
    ("scheduler", "flags", "shown"),
    [
        ("sh", SVC_F_SCHED1, "(sh-fallback)"),
        ("sh", SVC_F_SCHED2, "(sh-port)"),
        ("sh", SVC_F_SCHED1 | SVC_F_SCHED2, "(sh-fallback,sh-port)"),
        ("mh", SVC_F_SCHED1, "(mh-fallback)"),
        ("mh", SVC_F_SCHED2, "(mh-port)"),
    ],
)
def test_scheduler_flags(kernel: NetlinkIpvs, scheduler: str, flags: int, shown: str) -> None:
    spec = ServiceSpec(V4, scheduler, flags)
    add(kernel, AddService(spec))
    assert view()[ipvsadm_name(V4)][0] == f"{scheduler} {shown}"
    assert kernel.dump()[V4].spec == spec


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("protocol", ["tcp", "udp", "sctp"])
def test_protocols_and_families(kernel: NetlinkIpvs, family: int, protocol: str) -> None:
    address = "192.0.2.10" if family == 4 else "2001:db8::10"
    key = ServiceKey(family, protocol, address, 5060)
    spec = ServiceSpec(key, "rr", netmask=32 if family == 4 else 128)
    dest = DestSpec(DestKey(family, "10.0.0.11" if family == 4 else "2001:db8::11", 5060), "dr", 2)
    add(kernel, AddService(spec), AddDest(key, dest))
    shown = view()
    assert ipvsadm_name(key) in shown
    assert shown[ipvsadm_name(key)][1] == {str(dest.key): ["Route", "2", "0", "0"]}
    got = kernel.dump()[key]
    assert (got.spec, {k: d.spec for k, d in got.dests.items()}) == (spec, {dest.key: dest})


@pytest.mark.parametrize("family", [4, 6])
def test_fwmark_services(kernel: NetlinkIpvs, family: int) -> None:
    key = ServiceKey(family, "", "", 0, 42)
    spec = ServiceSpec(key, "wlc", netmask=32 if family == 4 else 128)
    dest = DestSpec(DestKey(family, "10.0.0.11" if family == 4 else "2001:db8::11", 0), "dr", 1)
    add(kernel, AddService(spec), AddDest(key, dest))
    assert view()[ipvsadm_name(key)] == ("wlc", {str(dest.key): ["Route", "1", "0", "0"]})
    assert kernel.dump()[key].spec == spec
    add(kernel, DeleteService(key))
    assert view() == {}


@pytest.mark.parametrize(
    ("key", "netmask", "shown"),
    [
        (V4, 24, "wlc persistent 300 mask 255.255.255.0"),
        (V4, 32, "wlc persistent 300"),
        (V6, 64, "wlc persistent 300 mask 64"),
        (V6, 128, "wlc persistent 300"),
    ],
)
def test_persistence(kernel: NetlinkIpvs, key: ServiceKey, netmask: int, shown: str) -> None:
    spec = ServiceSpec(key, "wlc", SVC_F_PERSISTENT, 300, netmask)
    add(kernel, AddService(spec))
    assert view()[ipvsadm_name(key)][0] == shown
    assert kernel.dump()[key].spec == spec


def test_persistence_engine_and_one_packet(kernel: NetlinkIpvs) -> None:
    sip = ServiceSpec(ServiceKey(4, "udp", "192.0.2.10", 5060), "rr", SVC_F_PERSISTENT, 60, 32, "sip")
    ops = ServiceSpec(ServiceKey(4, "udp", "192.0.2.10", 53), "rr", SVC_F_ONEPACKET)
    add(kernel, AddService(sip), AddService(ops))
    shown = view()
    assert shown[ipvsadm_name(sip.key)][0] == "rr persistent 60 pe sip"
    assert shown[ipvsadm_name(ops.key)][0] == "rr ops"
    table = kernel.dump()
    assert (table[sip.key].spec, table[ops.key].spec) == (sip, ops)


def test_forwarding_methods_weights_and_thresholds(kernel: NetlinkIpvs) -> None:
    dests = [
        DestSpec(DestKey(4, "10.0.0.11", 80), "nat", 0, 100, 10),
        DestSpec(DestKey(4, "10.0.0.12", 80), "dr", 65535),
        DestSpec(DestKey(4, "10.0.0.13", 80), "tun", 7),
    ]
    add(kernel, AddService(ServiceSpec(V4)), *(AddDest(V4, d) for d in dests))
    shown = view()[ipvsadm_name(V4)][1]
    assert shown == {str(d.key): [FORWARD[d.method], str(d.weight), "0", "0"] for d in dests}
    thresholds = view("--thresholds")[ipvsadm_name(V4)][1]
    assert thresholds["10.0.0.11:80"][:2] == ["100", "10"]
    assert {k: d.spec for k, d in kernel.dump()[V4].dests.items()} == {d.key: d for d in dests}
    add(kernel, EditDest(V4, DestSpec(dests[0].key, "dr", 65535, 0, 0)))
    assert view()[ipvsadm_name(V4)][1]["10.0.0.11:80"] == ["Route", "65535", "0", "0"]


@pytest.mark.parametrize(
    ("dest", "shown"),
    [
        (DestSpec(DestKey(4, "10.0.0.21", 80), "tun", 1), "ipip"),
        (DestSpec(DestKey(4, "10.0.0.22", 80), "tun", 1, tunnel_type="gue", tunnel_port=6080,
                  tunnel_checksum="csum"), "gue:6080:+c"),
        (DestSpec(DestKey(4, "10.0.0.23", 80), "tun", 1, tunnel_type="gue", tunnel_port=6081,
                  tunnel_checksum="remcsum"), "gue:6081:r+c"),
        (DestSpec(DestKey(4, "10.0.0.24", 80), "tun", 1, tunnel_type="gre"), "gre:-c"),
        (DestSpec(DestKey(4, "10.0.0.25", 80), "tun", 1, tunnel_type="gre",
                  tunnel_checksum="csum"), "gre:+c"),
    ],
    ids=["ipip", "gue-csum", "gue-remcsum", "gre", "gre-csum"],
)
def test_tunnel_types(kernel: NetlinkIpvs, dest: DestSpec, shown: str) -> None:
    add(kernel, AddService(ServiceSpec(V4)), AddDest(V4, dest))
    assert view("--tun-info")[ipvsadm_name(V4)][1][str(dest.key)][:2] == ["Tunnel", shown]
    assert kernel.dump()[V4].dests[dest.key].spec == dest


def test_errors_per_op_with_the_rest_applied(kernel: NetlinkIpvs) -> None:
    missing = ServiceKey(4, "tcp", "192.0.2.99", 80)
    ops = [
        AddService(ServiceSpec(V4)),
        AddDest(missing, DestSpec(DestKey(4, "10.0.0.11", 80))),
        AddDest(V4, DestSpec(DestKey(4, "10.0.0.11", 80))),
        AddService(ServiceSpec(V4)),
        AddService(ServiceSpec(V6, "nosuchsched", netmask=128)),
        AddDest(V4, DestSpec(DestKey(4, "10.0.0.12", 80))),
    ]
    errors = kernel.execute(ops)  # type: ignore[arg-type]
    assert [(e.op, e.errno) for e in errors] == [
        (ops[1], errno.ESRCH), (ops[3], errno.EEXIST), (ops[4], errno.ENOENT)]
    assert errors[0].message == (
        "add real server 10.0.0.11:80 to tcp 192.0.2.99:80: No such process")
    assert errors[2].message == (
        "add virtual service tcp [2001:db8::10]:80: No such file or directory")
    shown = view()
    assert list(shown) == [ipvsadm_name(V4)]
    assert set(shown[ipvsadm_name(V4)][1]) == {"10.0.0.11:80", "10.0.0.12:80"}


def test_many_ops_in_one_call(kernel: NetlinkIpvs) -> None:
    """More ops than one in-flight window: every ack is collected, none lost."""
    keys = [ServiceKey(4, "udp", "198.18.0.1", port) for port in range(1, 601)]
    ops = [AddService(ServiceSpec(k, "rr")) for k in keys]
    ops += [AddDest(k, DestSpec(DestKey(4, "10.0.0.1", 53), "dr")) for k in keys]
    ops.append(AddService(ServiceSpec(keys[-1], "rr")))  # the last one fails
    errors = kernel.execute(ops)  # type: ignore[arg-type]
    assert [(e.op, e.errno) for e in errors] == [(ops[-1], errno.EEXIST)]
    assert ipvsadm("-Sn").count("\n-a ") == len(keys)
    assert len(kernel.dump()) == len(keys)


def test_timeouts_against_ipvsadm(kernel: NetlinkIpvs) -> None:
    saved = kernel.get_timeouts()
    shown = ipvsadm("-L", "--timeout").split(":")[1].split()
    assert [int(v) for v in shown] == [saved.tcp, saved.tcpfin, saved.udp]
    try:
        kernel.set_timeouts(Timeouts(1000, 60, 200))
        assert ipvsadm("-L", "--timeout").strip() == "Timeout (tcp tcpfin udp): 1000 60 200"
        ipvsadm("--set", "900", "0", "30")
        assert kernel.get_timeouts() == Timeouts(900, 60, 30)
    finally:
        kernel.set_timeouts(saved)


@pytest.fixture
def sync_iface() -> Iterator[str]:
    sh(["ip", "link", "add", SYNC_IFACE, "type", "dummy"])
    sh(["ip", "link", "set", SYNC_IFACE, "multicast", "on", "up"])
    try:
        yield SYNC_IFACE
    finally:
        sh(["ip", "link", "del", SYNC_IFACE])


def test_sync_daemons_against_ipvsadm(kernel: NetlinkIpvs, sync_iface: str) -> None:
    master = SyncDaemon("master", sync_iface, 51)
    backup = SyncDaemon("backup", sync_iface, 52, 1400, "239.1.2.3", 9000, 3)
    kernel.start_sync_daemon(master)
    kernel.start_sync_daemon(backup)
    try:
        lines = ipvsadm("-L", "--daemon").splitlines()
        assert lines[0].startswith(f"master sync daemon (mcast={sync_iface}, syncid=51,")
        assert "group=224.0.0.81, port=8848, ttl=1)" in lines[0]
        assert lines[1] == (f"backup sync daemon (mcast={sync_iface}, syncid=52, maxlen=1400, "
                            "group=239.1.2.3, port=9000, ttl=3)")
        got = {d.state: d for d in kernel.sync_daemons()}
        assert got["backup"] == backup
        assert (got["master"].interface, got["master"].syncid) == (sync_iface, 51)
    finally:
        kernel.stop_sync_daemon("master")
    assert ipvsadm("-L", "--daemon").startswith("backup sync daemon")
    kernel.stop_sync_daemon("backup")
    assert ipvsadm("-L", "--daemon").strip() == ""
    assert kernel.sync_daemons() == []


def test_ipv6_sync_group(kernel: NetlinkIpvs, sync_iface: str) -> None:
    daemon = SyncDaemon("backup", sync_iface, 7, mcast_group="ff02::81", mcast_port=8849)
    kernel.start_sync_daemon(daemon)
    try:
        assert "group=ff02::81, port=8849" in ipvsadm("-L", "--daemon")
        got = kernel.sync_daemons()[0]
        assert (got.mcast_group, got.mcast_port) == ("ff02::81", 8849)
    finally:
        kernel.stop_sync_daemon("backup")


def number(text: str) -> int:
    """ipvsadm prints big counters with K/M/G suffixes; ours are small."""
    assert re.fullmatch(r"\d+", text), text
    return int(text)


@pytest.fixture
def vip_route() -> Iterator[None]:
    """Traffic to the VIP and to the real servers leaves by a dummy link (and vanishes)."""
    sh(["ip", "link", "add", "dvip", "type", "dummy"])
    sh(["ip", "link", "set", "dvip", "up"])
    sh(["ip", "route", "add", "192.0.2.0/24", "dev", "dvip"])
    sh(["ip", "route", "add", "10.99.0.0/24", "dev", "dvip"])
    try:
        yield
    finally:
        sh(["ip", "link", "del", "dvip"])


def test_stats_and_connections_read_back(kernel: NetlinkIpvs, vip_route: None) -> None:
    spec = ServiceSpec(V4, "rr", SVC_F_PERSISTENT, 300, 32)
    dest = DestKey(4, "10.99.0.1", 80)
    add(kernel, AddService(spec), AddDest(V4, DestSpec(dest, "nat", 1)))
    for _ in range(3):  # local clients go through IPVS at LOCAL_OUT: SYNs get scheduled
        with socket.socket() as s:
            s.setblocking(False)
            s.connect_ex((V4.address, V4.port))
    deadline = time.monotonic() + 15
    while True:  # byte and packet counters are folded in by the 2 s rate estimator
        got = kernel.dump()[V4]
        if got.stats.connections >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rs = got.dests[dest]
    conns = view("--persistent-conn")[ipvsadm_name(V4)][1][str(dest)]
    assert [number(v) for v in conns] == [1, rs.persistent_conns, rs.active_conns, rs.inactive_conns]
    assert rs.persistent_conns == 1 and rs.active_conns + rs.inactive_conns == 3
    stats = view("--stats")
    svc_line = stats[ipvsadm_name(V4)][0].split()
    assert number(svc_line[0]) == got.stats.connections >= 3
    assert number(svc_line[1]) == got.stats.packets_in >= 3
    assert number(svc_line[3]) == got.stats.bytes_in > 0
    assert number(stats[ipvsadm_name(V4)][1][str(dest)][0]) == rs.stats.connections >= 3


def test_no_ipvs_raises_unavailable_not_skip() -> None:
    """Sanity: the suite really has a kernel; a missing ip_vs must fail here."""
    assert Path("/proc/net/ip_vs").exists()
    NetlinkIpvs().close()
