"""What the kernel holds, as the daemon last read or wrote it: the mirror.

A health change or a drain is planned against this copy instead of a dump, so it costs
the entries it touches. Pure: writes that the kernel acked are applied here the way the
kernel applies them (flags masked, tunnel fields of a non-tunnel dest reset); each
service is replaced, never edited in place, so status and /metrics reading it from the
event loop never see one half-written.
"""

from __future__ import annotations

from collections.abc import Iterable

from director.ipvs.model import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    KernelDest,
    KernelService,
    Op,
    ServiceKey,
    service_of,
    stored_dest,
    stored_service,
)


def apply_ops(have: KernelService | None, ops: Iterable[Op]) -> KernelService | None:
    """`have` after `ops` (all on that one service, all acked); None once it is deleted."""
    svc = None if have is None else KernelService(spec=have.spec, dests=dict(have.dests), stats=have.stats)
    for op in ops:
        if isinstance(op, AddService):
            svc = KernelService(spec=stored_service(op.spec))
        elif isinstance(op, DeleteService):
            svc = None
        elif svc is None:
            continue  # the kernel would have refused it: nothing to mirror
        elif isinstance(op, EditService):
            svc.spec = stored_service(op.spec)
        elif isinstance(op, AddDest):
            svc.dests[op.spec.key] = KernelDest(spec=stored_dest(op.spec))
        elif isinstance(op, EditDest):
            old = svc.dests.get(op.spec.key)
            svc.dests[op.spec.key] = KernelDest(spec=stored_dest(op.spec)) if old is None else KernelDest(
                stored_dest(op.spec), old.active_conns, old.inactive_conns, old.persistent_conns, old.stats)
        elif isinstance(op, DeleteDest):
            svc.dests.pop(op.key, None)
    return svc


def group_by_service(ops: Iterable[Op]) -> dict[ServiceKey, list[Op]]:
    grouped: dict[ServiceKey, list[Op]] = {}
    for op in ops:
        grouped.setdefault(service_of(op), []).append(op)
    return grouped
