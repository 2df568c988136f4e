"""An in-memory IPVS backend with the kernel's answers, for fast reconciler tests.

It mirrors what `net/netfilter/ipvs/ip_vs_ctl.c` answers (EEXIST, ESRCH,
ENOENT, ERANGE, EINVAL), so a reconciler proven against it behaves the same on
a real kernel; `tests/ipvs/test_contract.py` runs one suite against
both to keep that true. `writes` counts every write request so tests can
assert that an unchanged table costs zero writes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from director.config.model import PROTOCOLS, SCHEDULERS
from director.ipvs.codec import op_error_message
from director.ipvs.model import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestSpec,
    EditDest,
    EditService,
    KernelDest,
    KernelService,
    KernelTable,
    Op,
    OpError,
    ServiceKey,
    ServiceSpec,
    SyncDaemon,
    Timeouts,
    service_of,
    stored_dest,
    stored_service,
)

# A stock kernel has every scheduler the config offers.
ALL_SCHEDULERS = frozenset(SCHEDULERS)
KERNEL_DEFAULT_TIMEOUTS = Timeouts(tcp=900, tcpfin=120, udp=300)


class _Fail(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class MemoryIpvs:
    """`IpvsBackend` in memory. Inject the schedulers, PEs and interfaces the kernel has."""

    def __init__(
        self,
        schedulers: Iterable[str] = ALL_SCHEDULERS,
        pe_names: Iterable[str] = ("sip",),
        interfaces: Iterable[str] | None = None,
    ) -> None:
        self.table: KernelTable = {}
        self.schedulers = frozenset(schedulers)
        self.pe_names = frozenset(pe_names)
        self.interfaces = None if interfaces is None else frozenset(interfaces)
        self.timeouts = KERNEL_DEFAULT_TIMEOUTS
        self.daemons: dict[str, SyncDaemon] = {}
        self.writes = 0
        self.dumps = 0  # whole-table dumps, so tests can assert an event cost none
        self.reads = 0  # targeted reads (dump_services)
        self.log: list[Op] = []
        self.closed = False

    # --- reads -----------------------------------------------------------------

    def dump(self) -> KernelTable:
        self.dumps += 1
        return {key: _copy(svc) for key, svc in self.table.items()}

    def dump_services(self, keys: Iterable[ServiceKey]) -> tuple[KernelTable, dict[ServiceKey, str]]:
        self.reads += 1
        table = self.table
        return {key: _copy(table[key]) for key in keys if key in table}, {}

    def get_timeouts(self) -> Timeouts:
        return self.timeouts

    def sync_daemons(self) -> list[SyncDaemon]:
        return [self.daemons[s] for s in ("master", "backup") if s in self.daemons]

    # --- writes ----------------------------------------------------------------------

    def execute(self, ops: list[Op]) -> list[OpError]:
        errors = []
        for op in ops:
            self.writes += 1
            self.log.append(op)
            try:
                self._apply(op)
            except _Fail as fail:
                errors.append(OpError(op, fail.code, op_error_message(op, fail.code)))
        return errors

    def set_timeouts(self, timeouts: Timeouts) -> None:
        self.writes += 1
        self.timeouts = Timeouts(
            tcp=timeouts.tcp or self.timeouts.tcp,
            tcpfin=timeouts.tcpfin or self.timeouts.tcpfin,
            udp=timeouts.udp or self.timeouts.udp,
        )

    def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        self.writes += 1
        if daemon.state in self.daemons:
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST))
        if self.interfaces is not None and daemon.interface not in self.interfaces:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        # The kernel reports its defaults for what was not given.
        self.daemons[daemon.state] = replace(
            daemon,
            max_packet_size=_kernel_packet_size(daemon),
            mcast_group=daemon.mcast_group or "224.0.0.81",
            mcast_port=daemon.mcast_port or 8848,
            mcast_ttl=daemon.mcast_ttl or 1,
        )

    def stop_sync_daemon(self, state: Literal["master", "backup"]) -> None:
        self.writes += 1
        if state not in self.daemons:
            raise OSError(errno.ESRCH, os.strerror(errno.ESRCH))
        del self.daemons[state]

    def close(self) -> None:
        self.closed = True

    # --- the kernel's rules -------------------------------------------------------------

    def _apply(self, op: Op) -> None:
        if isinstance(op, AddService):
            if op.spec.key in self.table:
                raise _Fail(errno.EEXIST)
            self.table[op.spec.key] = KernelService(spec=self._check_service(op.spec))
            return
        key = service_of(op)
        svc = self.table.get(key)
        if svc is None:
            raise _Fail(errno.ESRCH)
        if isinstance(op, EditService):
            svc.spec = self._check_service(op.spec)
        elif isinstance(op, DeleteService):
            del self.table[key]
        else:
            self._apply_to_dests(svc, op)

    def _apply_to_dests(self, svc: KernelService, op: Op) -> None:
        if isinstance(op, AddDest):
            if op.spec.key in svc.dests:
                raise _Fail(errno.EEXIST)
            svc.dests[op.spec.key] = KernelDest(spec=self._check_dest(svc.spec, op.spec))
        elif isinstance(op, EditDest):
            dest = svc.dests.get(op.spec.key)
            if dest is None:
                raise _Fail(errno.ENOENT)
            dest.spec = self._check_dest(svc.spec, op.spec)
        elif isinstance(op, DeleteDest):
            if op.key not in svc.dests:
                raise _Fail(errno.ENOENT)
            del svc.dests[op.key]

    def _check_service(self, spec: ServiceSpec) -> ServiceSpec:
        key = spec.key
        if not key.fwmark and key.protocol not in PROTOCOLS:
            raise _Fail(errno.EPROTONOSUPPORT)
        if key.family == 6 and not 1 <= spec.netmask <= 128:
            raise _Fail(errno.EINVAL)
        if spec.scheduler not in self.schedulers:
            raise _Fail(errno.ENOENT)
        if spec.pe_name and spec.pe_name not in self.pe_names:
            raise _Fail(errno.ENOENT)
        return stored_service(spec)

    def _check_dest(self, service: ServiceSpec, spec: DestSpec) -> DestSpec:
        if spec.key.family != service.key.family and spec.method != "tun":
            raise _Fail(errno.EINVAL)
        if spec.lower_threshold > spec.upper_threshold:
            raise _Fail(errno.ERANGE)
        if spec.method == "tun" and spec.tunnel_type == "gue" and not spec.tunnel_port:
            raise _Fail(errno.EINVAL)
        spec = stored_dest(spec)
        # Linux 6.1 keeps the method as sent, even for a local address (no LOCALNODE rewrite).
        return spec


def _copy(svc: KernelService) -> KernelService:
    """What a dump hands out: the specs are frozen and shared, the rest copied (as a kernel's
    dump is a copy: later writes do not show through it)."""
    return KernelService(svc.spec, {key: KernelDest(d.spec, d.active_conns, d.inactive_conns, d.persistent_conns,
                                                   replace(d.stats)) for key, d in svc.dests.items()},
                         replace(svc.stats))


def _kernel_packet_size(daemon: SyncDaemon) -> int:
    """What the kernel keeps (interface MTU taken as 1500): the MTU less the IP and UDP
    headers when unset, else the value clamped to 1 (master) or 1024 (backup) up to 65535 less
    the headers."""
    headers = 48 if ":" in daemon.mcast_group else 28
    if not daemon.max_packet_size:
        return 1500 - headers
    least = 1 if daemon.state == "master" else 1024
    return min(max(daemon.max_packet_size, least), 65535 - headers)
