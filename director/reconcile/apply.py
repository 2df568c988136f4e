"""One reconcile pass: dump the kernel once, plan, execute, report.

Shared by `directord diff` / `apply` and the daemon's periodic pass, so the
one-shot commands and the service behave identically.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from director.config.model import Config
from director.ipvs.model import IpvsBackend, KernelService, KernelTable, Op, OpError, ServiceKey, Timeouts, service_of
from director.ipvs.sysctl import NAMES as SYSCTL_NAMES
from director.ipvs.sysctl import IpvsSysctl
from director.reconcile.desired import DesiredTable, RealServerState, StateKey, desired_table, service_key
from director.reconcile.mirror import apply_ops, group_by_service
from director.reconcile.plan import Book, Change, Plan, plan


@dataclass
class PassReport:
    changes: list[Change] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    services: int = 0
    real_servers: int = 0
    desired: DesiredTable = field(default_factory=dict)
    kernel: KernelTable = field(default_factory=dict)  # the dump, with this pass's acked writes applied

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {
            "changes": [
                {"action": c.action, "entry": c.entry,
                 "fields": {k: [a, b] for k, (a, b) in c.fields.items()}}
                for c in self.changes
            ],
            "waiting": self.waiting,
            "errors": self.errors,
            "services": self.services,
            "real_servers": self.real_servers,
        }


def timeouts_change(config: Config, current: Timeouts) -> tuple[Timeouts, dict] | None:
    """The kernel timeouts to set, or None when they already match the config."""
    # IpvsConfig.timeout_X is the kernel's timeout X
    want = {spec.name: getattr(config.ipvs, f"timeout_{spec.name}") for spec in dataclasses.fields(Timeouts)}
    fields = {}
    for name, seconds in want.items():
        if seconds is not None and int(seconds) != getattr(current, name):
            fields[name] = (getattr(current, name), int(seconds))
    if not fields:
        return None
    # Zero leaves a kernel timeout unchanged.
    target = Timeouts(**{name: new for name, (_, new) in fields.items()})
    return target, fields


def sysctl_changes(config: Config, sysctl: IpvsSysctl) -> list[tuple[str, int, int]]:
    """(name, current, wanted) for every configured net.ipv4.vs sysctl that differs."""
    changes = []
    for name in SYSCTL_NAMES:
        wanted = getattr(config.ipvs, name)
        if wanted is not None and sysctl.get(name) != int(wanted):
            changes.append((name, sysctl.get(name), int(wanted)))
    return changes


def reconcile_pass(config: Config, backend: IpvsBackend, book: Book, now: float,
                   states: Mapping[StateKey, RealServerState] | None = None,
                   dry_run: bool = False, sysctl: IpvsSysctl | None = None,
                   desired: DesiredTable | None = None) -> PassReport:
    """Make the kernel match config + states; with dry_run, only say what would change.

    `book` is updated in place (unless dry_run) and must be persisted by the caller.
    `desired`: the table already derived from config + states (the daemon keeps it).
    """
    kernel = backend.dump()
    if desired is None:
        desired = desired_table(config, states, now)
    drain_timeouts = {service_key(vs): vs.drain_timeout for vs in config.virtual_servers}
    working = copy.deepcopy(book) if dry_run else book
    result: Plan = plan(desired, kernel, working, now, drain_timeouts)
    report = PassReport(changes=list(result.changes), waiting=result.waiting, desired=desired, kernel=kernel,
                        services=len(desired), real_servers=sum(len(d.dests) for d in desired.values()))
    timeouts = timeouts_change(config, backend.get_timeouts())
    sysctls = sysctl_changes(config, sysctl) if sysctl is not None else []
    if dry_run:
        if timeouts:
            report.changes.append(_timeouts_change(timeouts[1]))
        report.changes.extend(_sysctl_change(*change) for change in sysctls)
        return report
    errors: list[OpError] = backend.execute(result.ops) if result.ops else []
    failed = {id(e.op) for e in errors}
    report.changes = [c for c in report.changes if id(c.op) not in failed]
    report.errors = [e.message for e in errors]
    for key, ops in _acked(result.ops, errors).items():  # the dump becomes what the kernel holds now
        after = apply_ops(kernel.get(key), ops)
        if after is None:
            kernel.pop(key, None)
        else:
            kernel[key] = after
    report.changes.extend(_settings(config, backend, sysctl, timeouts, sysctls, report.errors))
    return report


def settings_pass(config: Config, backend: IpvsBackend, sysctl: IpvsSysctl | None) -> tuple[list[Change], list[str]]:
    """The kernel timeouts and net.ipv4.vs sysctls made to match the config (each audit tick)."""
    errors: list[str] = []
    try:
        timeouts = timeouts_change(config, backend.get_timeouts())
    except OSError as exc:
        return [], [f"get timeouts: {exc.strerror or exc}"]
    sysctls = sysctl_changes(config, sysctl) if sysctl is not None else []
    return _settings(config, backend, sysctl, timeouts, sysctls, errors), errors


def _settings(config: Config, backend: IpvsBackend, sysctl: IpvsSysctl | None, timeouts: tuple[Timeouts, dict] | None,
              sysctls: list[tuple[str, int, int]], errors: list[str]) -> list[Change]:
    changes: list[Change] = []
    if timeouts:
        try:
            backend.set_timeouts(timeouts[0])
            changes.append(_timeouts_change(timeouts[1]))
        except OSError as exc:
            errors.append(f"set timeouts: {exc.strerror or exc}")
    for name, old, new in sysctls:
        assert sysctl is not None
        try:
            sysctl.set(name, new)
            changes.append(_sysctl_change(name, old, new))
        except OSError as exc:
            errors.append(f"set sysctl net.ipv4.vs.{name}: {exc.strerror or exc}")
    return changes


def _sysctl_change(name: str, old: int, new: int) -> Change:
    return Change("change", f"sysctl net.ipv4.vs.{name}", {"value": (old, new)}, op=None)


def _timeouts_change(fields: dict) -> Change:
    return Change("change", "timeouts", fields, op=None)


# --- targeted passes: what a health change, a drain or an audit slice costs -------------------

# A write the kernel refused because its table is not what the mirror says (an entry made or
# removed underneath): the service is re-read and planned again, never flushed.
STALE_ERRNOS = frozenset({errno.ENOENT, errno.EEXIST, errno.ESRCH})


@dataclass
class TargetedReport:
    """What a targeted pass did; `services` is each touched service as the kernel now holds
    it (None: not there), for the caller to put in its mirror."""

    changes: list[Change] = field(default_factory=list)  # event-driven writes
    repairs: list[Change] = field(default_factory=list)  # writes an audited slice needed
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    audit_errors: list[str] = field(default_factory=list)  # services the audit could not read
    services: dict[ServiceKey, KernelService | None] = field(default_factory=dict)
    reread: set[ServiceKey] = field(default_factory=set)  # re-read after a stale write


def reconcile_services(desired: DesiredTable, mirror: Mapping[ServiceKey, KernelService], backend: IpvsBackend,
                       book: Book, now: float, drain_timeouts: Mapping[ServiceKey, float],
                       touched: Collection[ServiceKey], audited: Collection[ServiceKey] = (),
                       read: Collection[ServiceKey] = ()) -> TargetedReport:
    """Plan and write just `touched` (against the mirror, or a fresh read for those also in
    `read`) and `audited` (against a fresh read), in one batch; a write meeting a table
    changed underneath re-reads its service and tries once more. `book` is updated in place."""
    report = TargetedReport()
    touched = set(touched)
    audited = [key for key in audited if key not in touched]
    wanted_reads = [key for key in read if key in touched] + audited
    fresh, problems = backend.dump_services(wanted_reads) if wanted_reads else ({}, {})
    report.audit_errors = list(problems.values())
    unreadable = set(problems)
    audited = [key for key in audited if key not in unreadable]  # left as they are until their next turn
    touched -= unreadable
    fresh_keys = set(wanted_reads) - unreadable
    view = {key: mirror[key] for key in touched if key in mirror and key not in fresh_keys}
    view.update(fresh)
    events = plan(desired, view, book, now, drain_timeouts, scope=touched)
    checks = plan(desired, view, book, now, drain_timeouts, scope=audited)
    report.changes, report.repairs = events.changes, checks.changes
    report.waiting = events.waiting + checks.waiting
    ops = events.ops + checks.ops
    errors = backend.execute(ops) if ops else []
    stale = {service_of(e.op) for e in errors if e.errno in STALE_ERRNOS}
    acked = _acked(ops, errors)
    scope = set(touched) | set(audited)
    services = {key: apply_ops(view.get(key), acked.get(key, ())) for key in scope}
    final_errors = [e for e in errors if service_of(e.op) not in stale]
    if stale:
        again, _ = backend.dump_services(stale)
        report.reread = stale
        retry = plan(desired, again, book, now, drain_timeouts, scope=stale)
        retry_errors = backend.execute(retry.ops) if retry.ops else []
        retry_acked = _acked(retry.ops, retry_errors)
        for key in stale:
            services[key] = apply_ops(again.get(key), retry_acked.get(key, ()))
        final_errors += retry_errors
        failed = {id(e.op) for e in retry_errors}
        report.changes += [c for c in retry.changes if id(c.op) not in failed]
    failed = {id(e.op) for e in errors}
    report.changes = [c for c in report.changes if id(c.op) not in failed]
    report.repairs = [c for c in report.repairs if id(c.op) not in failed]
    report.errors = [e.message for e in final_errors]
    report.services = services
    return report


def _acked(ops: list[Op], errors: list[OpError]) -> dict[ServiceKey, list[Op]]:
    failed = {id(e.op) for e in errors}
    return group_by_service(op for op in ops if id(op) not in failed)
