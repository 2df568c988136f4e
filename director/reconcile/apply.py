"""One reconcile pass: dump the kernel once, plan, execute, report.

Shared by `directord diff` / `apply` and the daemon's periodic pass, so the
one-shot commands and the service behave identically.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from director.config.model import Config
from director.ipvs.model import IpvsBackend, KernelTable, OpError, Timeouts
from director.ipvs.sysctl import NAMES as SYSCTL_NAMES
from director.ipvs.sysctl import IpvsSysctl
from director.reconcile.desired import DesiredTable, RealServerState, StateKey, desired_table, service_key
from director.reconcile.plan import Book, Change, Plan, plan


@dataclass
class PassReport:
    changes: list[Change] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    services: int = 0
    real_servers: int = 0
    desired: DesiredTable = field(default_factory=dict)
    kernel: KernelTable = field(default_factory=dict)  # the dump this pass started from

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
                   dry_run: bool = False, sysctl: IpvsSysctl | None = None) -> PassReport:
    """Make the kernel match config + states; with dry_run, only say what would change.

    `book` is updated in place (unless dry_run) and must be persisted by the caller.
    """
    kernel = backend.dump()
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
    if timeouts:
        try:
            backend.set_timeouts(timeouts[0])
            report.changes.append(_timeouts_change(timeouts[1]))
        except OSError as exc:
            report.errors.append(f"set timeouts: {exc.strerror or exc}")
    for name, old, new in sysctls:
        try:
            sysctl.set(name, new)
            report.changes.append(_sysctl_change(name, old, new))
        except OSError as exc:
            report.errors.append(f"set sysctl net.ipv4.vs.{name}: {exc.strerror or exc}")
    return report


def _sysctl_change(name: str, old: int, new: int) -> Change:
    return Change("change", f"sysctl net.ipv4.vs.{name}", {"value": (old, new)}, op=None)


def _timeouts_change(fields: dict) -> Change:
    return Change("change", "timeouts", fields, op=None)
