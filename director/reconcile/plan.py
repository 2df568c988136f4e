"""Diff the desired IPVS table against one kernel dump into the fewest operations.

Pure: desired table, kernel table, ownership/drain book and the time in; a plan
out. Rules that keep traffic safe:
- nothing is flushed; entries that already match get no write (adoption);
- only services directord owns (declared now, or created by it earlier and
  still draining) are touched; anything else in the kernel is left alone;
- a real server that leaves the config is drained: weight 0, then deleted once
  it has no connections or its drain timeout passes (UDP: deleted at once);
- a service that leaves the config is drained the same way, then deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from director.config.model import VirtualServerConfig, field_default
from director.ipvs.model import (
    NO_TUNNEL,
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    KernelDest,
    KernelService,
    KernelTable,
    Op,
    ServiceKey,
    ServiceSpec,
)
from director.reconcile.desired import DesiredService, DesiredTable

# For a service plan() is given no drain timeout for: the config's default.
DEFAULT_DRAIN_TIMEOUT: float = field_default(VirtualServerConfig, "drain_timeout")


@dataclass
class Book:
    """What the reconciler remembers between passes (persisted in state_dir).

    owned: services directord put in the kernel and has not deleted yet, with the
    drain timeout to use should they leave the config.
    draining: when each draining entry (service, or service + real server) started.
    """

    owned: dict[ServiceKey, float] = field(default_factory=dict)
    draining: dict[tuple[ServiceKey, DestKey | None], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """One planned operation, described for people."""

    action: str  # add | change | drain | remove
    entry: str  # "service tcp 192.0.2.10:80" or "real server 10.0.0.11:80 in tcp 192.0.2.10:80"
    fields: dict[str, tuple[Any, Any]]  # name -> (kernel value, desired value)
    op: Op | None  # None for settings outside the service table (timeouts)

    def describe(self) -> str:
        text = f"{self.action} {self.entry}"
        if self.fields and self.action == "add":
            text += ": " + ", ".join(f"{k} {_show(b)}" for k, (_, b) in self.fields.items())
        elif self.fields:
            text += ": " + ", ".join(f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in self.fields.items())
        return text


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    # Entries waiting on connections to end before deletion (no op this pass).
    waiting: list[str] = field(default_factory=list)

    @property
    def ops(self) -> list[Op]:
        return [change.op for change in self.changes if change.op is not None]


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def plan(desired: DesiredTable, kernel: KernelTable, book: Book, now: float,
         drain_timeouts: Mapping[ServiceKey, float] | None = None,
         scope: Collection[ServiceKey] | None = None) -> Plan:
    """Compute the operations for one pass and update `book` for the next one.

    drain_timeouts: per desired service, how long a removed real server may drain.
    scope: plan only these services (`kernel` need hold only them): a health change or an
    audit slice costs what it touches, not the whole table. None: every service.
    """
    drain_timeouts = drain_timeouts or {}
    result = Plan()
    service_changes: list[Change] = []
    dest_changes: list[Change] = []
    dest_deletes: list[Change] = []
    service_deletes: list[Change] = []
    if scope is None:
        wanted: Iterable[tuple[ServiceKey, DesiredService]] = desired.items()
        leaving = sorted(set(book.owned) - set(desired))
    else:
        wanted = [(key, desired[key]) for key in scope if key in desired]
        leaving = sorted(key for key in scope if key in book.owned and key not in desired)

    for key, want in wanted:
        have = kernel.get(key)
        timeout = drain_timeouts.get(key, DEFAULT_DRAIN_TIMEOUT)
        book.owned[key] = timeout
        book.draining.pop((key, None), None)
        named = _service_entry(key, want.name)
        if have is None:
            service_changes.append(_add_service(want.spec, named))
            dest_changes.extend(_add_dest(key, named, spec) for spec in want.dests.values())
            continue
        edit = _edit_service(have.spec, want.spec, named)
        if edit:
            service_changes.append(edit)
        _plan_dests(key, named, want, have, book, now, timeout, dest_changes, dest_deletes, result.waiting)

    for key in leaving:
        have = kernel.get(key)
        if have is None:  # gone already (deleted by hand): forget it
            del book.owned[key]
            book.draining.pop((key, None), None)
            continue
        _plan_service_drain(key, have, book, now, dest_changes, service_deletes, result.waiting)

    _forget_settled_drains(book, kernel, scope)
    result.changes = service_changes + dest_changes + dest_deletes + service_deletes
    return result


def _plan_dests(key: ServiceKey, named: str, want: DesiredService, have: KernelService, book: Book, now: float,
                timeout: float, changes: list[Change], deletes: list[Change], waiting: list[str]) -> None:
    for dkey, spec in want.dests.items():
        book.draining.pop((key, dkey), None)
        current = have.dests.get(dkey)
        if current is None:
            changes.append(_add_dest(key, named, spec))
            continue
        edit = _edit_dest(key, named, current.spec, spec)
        if edit:
            changes.append(edit)
    udp = key.protocol == "udp"
    for dkey, current in have.dests.items():
        if dkey in want.dests:
            continue
        if dkey in want.evict or udp:
            deletes.append(_delete_dest(key, named, dkey, "remove"))
            continue
        change = _drain_step(key, named, dkey, current, book, now, timeout, waiting)
        if change is not None:
            (deletes if isinstance(change.op, DeleteDest) else changes).append(change)


def _drain_step(key: ServiceKey, named: str, dkey: DestKey, current: KernelDest, book: Book, now: float,
                timeout: float, waiting: list[str]) -> Change | None:
    """Weight 0 first; delete when idle or when the drain timeout has passed."""
    started = book.draining.setdefault((key, dkey), now)
    connections = current.active_conns + current.inactive_conns
    if connections == 0 or now - started >= timeout:
        return _delete_dest(key, named, dkey, "remove")
    if current.spec.weight != 0:
        return _set_weight_zero(key, named, current.spec)
    waiting.append(f"real server {dkey} in {named}: draining, {connections} connections, "
                   f"{max(0.0, timeout - (now - started)):.0f}s left")
    return None


def _plan_service_drain(key: ServiceKey, have: KernelService, book: Book, now: float,
                        dest_changes: list[Change], service_deletes: list[Change],
                        waiting: list[str]) -> None:
    timeout = book.owned[key]
    started = book.draining.setdefault((key, None), now)
    connections = sum(d.active_conns + d.inactive_conns for d in have.dests.values())
    if key.protocol == "udp" or connections == 0 or now - started >= timeout:
        service_deletes.append(Change("remove", f"service {key}", {}, DeleteService(key)))
        del book.owned[key]
        book.draining.pop((key, None), None)
        return
    for dest in have.dests.values():
        if dest.spec.weight != 0:
            dest_changes.append(_set_weight_zero(key, str(key), dest.spec))
    waiting.append(f"service {key}: draining, {connections} connections, "
                   f"{max(0.0, timeout - (now - started)):.0f}s left")


def _forget_settled_drains(book: Book, kernel: KernelTable, scope: Collection[ServiceKey] | None) -> None:
    """Drop drain records whose entry is no longer in the kernel (within `scope`)."""
    for skey, dkey in list(book.draining):
        if scope is not None and skey not in scope:
            continue
        have = kernel.get(skey)
        if dkey is None:
            gone = have is None and skey not in book.owned
        else:
            gone = have is None or dkey not in have.dests
        if gone:
            del book.draining[(skey, dkey)]


# --- one change each -------------------------------------------------------------------


def _service_entry(key: ServiceKey, name: str) -> str:
    """The config's name first (what the operator wrote), the address beside it (what the kernel shows)."""
    return f"{name} ({key})" if name else str(key)


def _add_service(spec: ServiceSpec, named: str) -> Change:
    fields = {"scheduler": (None, spec.scheduler)}
    if spec.timeout:
        fields["persistence"] = (None, f"{spec.timeout}s/{spec.netmask}")
    return Change("add", f"service {named}", fields, AddService(spec))


def _edit_service(have: ServiceSpec, want: ServiceSpec, named: str) -> Change | None:
    fields = {}
    for name in ("scheduler", "flags", "timeout", "netmask", "pe_name"):
        old, new = getattr(have, name), getattr(want, name)
        if old != new:
            fields[name] = (old, new)
    if not want.timeout:  # without persistence the kernel's netmask is meaningless
        fields.pop("netmask", None)
    if not fields:
        return None
    return Change("change", f"service {named}", fields, EditService(want))


def _dest_entry(named: str, dest: DestKey) -> str:
    return f"real server {dest} in {named}"


def _add_dest(service: ServiceKey, named: str, spec: DestSpec) -> Change:
    fields = {"method": (None, spec.method), "weight": (None, spec.weight)}
    return Change("add", _dest_entry(named, spec.key), fields, AddDest(service, spec))


_DEST_FIELDS = ("method", "weight", "upper_threshold", "lower_threshold")
_TUNNEL_FIELDS = tuple(NO_TUNNEL)


def _edit_dest(service: ServiceKey, named: str, have: DestSpec, want: DestSpec) -> Change | None:
    names = _DEST_FIELDS + (_TUNNEL_FIELDS if want.method == "tun" else ())
    fields = {}
    for name in names:
        old, new = getattr(have, name), getattr(want, name)
        if old != new:
            fields[name] = (old, new)
    if not fields:
        return None
    return Change("change", _dest_entry(named, want.key), fields, EditDest(service, want))


def _set_weight_zero(service: ServiceKey, named: str, have: DestSpec) -> Change:
    return Change("drain", _dest_entry(named, have.key), {"weight": (have.weight, 0)},
                  EditDest(service, replace(have, weight=0)))


def _delete_dest(service: ServiceKey, named: str, dest: DestKey, action: str) -> Change:
    return Change(action, _dest_entry(named, dest), {}, DeleteDest(service, dest))
