"""One behavioural contract for every IPVS backend, written once.

The reconciler's fast tests trust `MemoryIpvs`; this contract is what earns that
trust: `test_contract.py` runs every case on `MemoryIpvs` and `test_contract_kernel.py`
on `NetlinkIpvs` inside the VM rig, and both must answer the same. Each of them
provides the `backend` fixture and imports the cases from here.
"""

from __future__ import annotations

import errno

import pytest

from director.ipvs.model import (
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    SYNC_RECEIVE_ANY_SIZE,
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    IpvsBackend,
    ServiceKey,
    ServiceSpec,
    SyncDaemon,
    Timeouts,
)

SYNC_IFACE = "dsync0"
LOCAL = "203.0.113.1"  # assigned to SYNC_IFACE in the VM, a local address there (removed after the module)

V4 = ServiceKey(4, "tcp", "192.0.2.10", 80)
V6 = ServiceKey(6, "udp", "2001:db8::10", 53)
FWM4 = ServiceKey(4, "", "", 0, 10)
FWM6 = ServiceKey(6, "", "", 0, 11)
MISSING = ServiceKey(4, "tcp", "192.0.2.99", 80)
RS1 = DestKey(4, "10.0.0.11", 80)
RS2 = DestKey(4, "10.0.0.12", 80)
RS6 = DestKey(6, "2001:db8::11", 53)


def specs(backend: IpvsBackend) -> dict[ServiceKey, tuple[ServiceSpec, dict[DestKey, DestSpec]]]:
    return {k: (s.spec, {d: ds.spec for d, ds in s.dests.items()})
            for k, s in backend.dump().items()}


def ok(backend: IpvsBackend, *ops: object) -> None:
    assert backend.execute(list(ops)) == []  # type: ignore[arg-type]


def test_empty_table(backend: IpvsBackend) -> None:
    assert backend.dump() == {}


@pytest.mark.parametrize(
    "service",
    [
        ServiceSpec(V4, "wlc"),
        ServiceSpec(V6, "rr", netmask=128),
        ServiceSpec(FWM4, "wrr", SVC_F_PERSISTENT, 600, 24),
        ServiceSpec(FWM6, "lc", SVC_F_PERSISTENT, 60, 64),
        ServiceSpec(V4, "sh", SVC_F_SCHED1 | SVC_F_SCHED2),
        ServiceSpec(V4, "rr", SVC_F_ONEPACKET),
        ServiceSpec(ServiceKey(4, "sctp", "192.0.2.20", 3868), "mh", SVC_F_SCHED1),
    ],
    ids=["v4", "v6", "fwmark4-persistent", "fwmark6-persistent", "sh-flags", "ops", "sctp-mh"],
)
def test_service_round_trip(backend: IpvsBackend, service: ServiceSpec) -> None:
    ok(backend, AddService(service))
    assert specs(backend) == {service.key: (service, {})}


def test_dests_round_trip(backend: IpvsBackend) -> None:
    d1 = DestSpec(RS1, "nat", 0, 100, 10)
    d2 = DestSpec(RS2, "dr", 65535)
    d3 = DestSpec(DestKey(4, "10.0.0.13", 0), "tun", 7, tunnel_type="gre")
    d6 = DestSpec(RS6, "tun", 2, tunnel_type="gue", tunnel_port=5555, tunnel_checksum="csum")
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, d1), AddDest(V4, d2), AddDest(V4, d3),
       AddService(ServiceSpec(V6, netmask=128)), AddDest(V6, d6))
    got = specs(backend)
    assert got[V4][1] == {RS1: d1, RS2: d2, d3.key: d3}
    assert got[V6][1] == {RS6: d6}


def test_reading_some_services_answers_as_the_whole_dump(backend: IpvsBackend) -> None:
    """`dump_services` (a targeted re-read, an audit slice): the services asked for that exist,
    each as a full dump shows it; one the kernel has not is simply absent, not an error."""
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, DestSpec(RS1, "nat", 3)),
       AddService(ServiceSpec(FWM4, "wrr", SVC_F_PERSISTENT, 600, 24)),
       AddService(ServiceSpec(V6, netmask=128)), AddDest(V6, DestSpec(RS6, "dr", 2)))
    whole = backend.dump()
    some, problems = backend.dump_services([V4, MISSING, FWM4])
    assert problems == {} and set(some) == {V4, FWM4}
    assert some[V4].spec == whole[V4].spec and some[FWM4].spec == whole[FWM4].spec
    assert {k: d.spec for k, d in some[V4].dests.items()} == {k: d.spec for k, d in whole[V4].dests.items()}
    assert backend.dump_services([]) == ({}, {})


def test_mixed_family_tunnel_dest(backend: IpvsBackend) -> None:
    d = DestSpec(RS1, "tun", 1)
    ok(backend, AddService(ServiceSpec(V6, netmask=128)), AddDest(V6, d))
    assert specs(backend)[V6][1] == {RS1: d}


def test_mixed_family_needs_tunnel(backend: IpvsBackend) -> None:
    op = AddDest(V6, DestSpec(RS1, "nat"))
    ok(backend, AddService(ServiceSpec(V6, netmask=128)))
    assert [e.errno for e in backend.execute([op])] == [errno.EINVAL]


def test_edits(backend: IpvsBackend) -> None:
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, DestSpec(RS1, weight=5)))
    svc = ServiceSpec(V4, "sh", SVC_F_PERSISTENT | SVC_F_SCHED2, 300, 16)
    dest = DestSpec(RS1, "dr", 0, 50, 5)
    ok(backend, EditService(svc), EditDest(V4, dest))
    assert specs(backend) == {V4: (svc, {RS1: dest})}
    back = ServiceSpec(V4, "rr")
    ok(backend, EditService(back))
    assert specs(backend)[V4][0] == back


def test_local_method_round_trips_and_local_address_keeps_its_method(backend: IpvsBackend) -> None:
    """Modern kernels (checked on 6.1) keep the method as sent, even for a local address."""
    local = DestSpec(DestKey(4, LOCAL, 80), "local")
    routed = DestSpec(DestKey(4, LOCAL, 81), "dr")
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, local), AddDest(V4, routed))
    assert specs(backend)[V4][1] == {local.key: local, routed.key: routed}


def test_deleting_a_service_deletes_its_dests(backend: IpvsBackend) -> None:
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, DestSpec(RS1)), DeleteService(V4),
       AddService(ServiceSpec(V4)))
    assert specs(backend)[V4][1] == {}


def test_delete_dest(backend: IpvsBackend) -> None:
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, DestSpec(RS1)), AddDest(V4, DestSpec(RS2)),
       DeleteDest(V4, RS1))
    assert set(specs(backend)[V4][1]) == {RS2}


@pytest.mark.parametrize(
    ("op", "code"),
    [
        (AddService(ServiceSpec(V4)), errno.EEXIST),
        (EditService(ServiceSpec(MISSING)), errno.ESRCH),
        (DeleteService(MISSING), errno.ESRCH),
        (DeleteService(FWM6), errno.ESRCH),
        (AddDest(MISSING, DestSpec(RS1)), errno.ESRCH),
        (EditDest(MISSING, DestSpec(RS1)), errno.ESRCH),
        (DeleteDest(MISSING, RS1), errno.ESRCH),
        (AddDest(V4, DestSpec(RS1)), errno.EEXIST),
        (EditDest(V4, DestSpec(RS2)), errno.ENOENT),
        (DeleteDest(V4, RS2), errno.ENOENT),
        (AddService(ServiceSpec(MISSING, "nosuchsched")), errno.ENOENT),
        (EditService(ServiceSpec(V4, "nosuchsched")), errno.ENOENT),
        (AddService(ServiceSpec(MISSING, pe_name="nosuchpe")), errno.ENOENT),
        (AddService(ServiceSpec(ServiceKey(6, "tcp", "2001:db8::99", 80), netmask=0)), errno.EINVAL),
        (AddDest(V4, DestSpec(RS2, upper_threshold=5, lower_threshold=10)), errno.ERANGE),
        (AddDest(V4, DestSpec(RS2, "tun", tunnel_type="gue")), errno.EINVAL),
    ],
    ids=lambda v: getattr(v, "__name__", None) or (type(v).__name__ if not isinstance(v, int) else str(v)),
)
def test_errors_are_the_kernels(backend: IpvsBackend, op: object, code: int) -> None:
    ok(backend, AddService(ServiceSpec(V4)), AddDest(V4, DestSpec(RS1)))
    before = specs(backend)
    errors = backend.execute([op])  # type: ignore[list-item]
    assert [(e.op, e.errno) for e in errors] == [(op, code)]
    assert specs(backend) == before


def test_failed_ops_do_not_stop_the_rest(backend: IpvsBackend) -> None:
    bad = AddDest(MISSING, DestSpec(RS1))
    ops = [AddService(ServiceSpec(V4)), bad, AddDest(V4, DestSpec(RS1)),
           AddService(ServiceSpec(V4)), AddDest(V4, DestSpec(RS2))]
    errors = backend.execute(ops)  # type: ignore[arg-type]
    assert [(e.op, e.errno) for e in errors] == [(bad, errno.ESRCH), (ops[3], errno.EEXIST)]
    assert errors[0].message == "add real server 10.0.0.11:80 to tcp 192.0.2.99:80: No such process"
    assert errors[1].message == "add virtual service tcp 192.0.2.10:80: File exists"
    assert set(specs(backend)[V4][1]) == {RS1, RS2}


def test_timeouts(backend: IpvsBackend) -> None:
    backend.set_timeouts(Timeouts(1000, 100, 200))
    assert backend.get_timeouts() == Timeouts(1000, 100, 200)
    backend.set_timeouts(Timeouts(0, 0, 30))  # zero leaves a field alone
    assert backend.get_timeouts() == Timeouts(1000, 100, 30)


def test_sync_packet_sizes_as_the_kernel_keeps_them(backend: IpvsBackend) -> None:
    """directord's master sends one connection per packet and its backup takes any size: the
    kernel must keep both as asked, and clamp what it cannot (a backup reads at least 1024)."""
    asked = {("master", 0): 1472, ("master", 64): 64, ("backup", 100): 1024,
             ("backup", SYNC_RECEIVE_ANY_SIZE): 65507}
    for (state, size), kept in asked.items():
        backend.start_sync_daemon(SyncDaemon(state, SYNC_IFACE, 51, size))  # type: ignore[arg-type]
        try:
            assert backend.sync_daemons()[0].max_packet_size == kept, (state, size)
        finally:
            backend.stop_sync_daemon(state)  # type: ignore[arg-type]


def test_sync_daemon_lifecycle(backend: IpvsBackend) -> None:
    assert backend.sync_daemons() == []
    backend.start_sync_daemon(SyncDaemon("master", SYNC_IFACE, 51))
    backend.start_sync_daemon(SyncDaemon("backup", SYNC_IFACE, 52, mcast_group="239.1.2.3",
                                         mcast_port=9000, mcast_ttl=3))
    got = {d.state: d for d in backend.sync_daemons()}
    assert (got["master"].interface, got["master"].syncid) == (SYNC_IFACE, 51)
    assert (got["master"].mcast_group, got["master"].mcast_port, got["master"].mcast_ttl) == (
        "224.0.0.81", 8848, 1)
    assert (got["backup"].syncid, got["backup"].mcast_group) == (52, "239.1.2.3")
    assert (got["backup"].mcast_port, got["backup"].mcast_ttl) == (9000, 3)
    with pytest.raises(OSError) as exc:
        backend.start_sync_daemon(SyncDaemon("master", SYNC_IFACE, 51))
    assert exc.value.errno == errno.EEXIST
    backend.stop_sync_daemon("master")
    assert [d.state for d in backend.sync_daemons()] == ["backup"]
    backend.stop_sync_daemon("backup")
    with pytest.raises(OSError) as exc:
        backend.stop_sync_daemon("backup")
    assert exc.value.errno == errno.ESRCH
    assert backend.sync_daemons() == []
