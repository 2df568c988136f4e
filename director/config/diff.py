"""What a reload changes in the VRRP instances, as lines an admin reads.

IPVS changes come from the reconciler's plan; VRRP changes (priority, VIPs, peers...) are a
difference between two configs, so they are described here, field by field."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from director.config.model import VrrpInstanceConfig


def vrrp_changes(old: Sequence[VrrpInstanceConfig], new: Sequence[VrrpInstanceConfig]) -> list[str]:
    """One line per instance added, removed or changed, in the new file's order."""
    before = {instance.name: instance for instance in old}
    after = {instance.name: instance for instance in new}
    lines = [f"remove vrrp_instance {name}" for name in before if name not in after]
    for name, instance in after.items():
        if name not in before:
            lines.append(f"add vrrp_instance {name} ({instance.interface} vrid {instance.vrid})")
        elif instance != before[name]:
            lines.append(f"change vrrp_instance {name}: " + "; ".join(_field_changes(before[name], instance)))
    return lines


def _field_changes(old: VrrpInstanceConfig, new: VrrpInstanceConfig) -> list[str]:
    """A secret (a field kept out of the repr: auth_pass) is said to change, never shown."""
    changes = []
    for field in dataclasses.fields(VrrpInstanceConfig):
        was, now = getattr(old, field.name), getattr(new, field.name)
        if was != now:
            changes.append(f"{field.name} changed" if not field.repr else f"{field.name} {_difference(was, now)}")
    return changes


def _difference(was: Any, now: Any) -> str:
    """`+added -removed` for lists, `old -> new` for everything else."""
    if isinstance(was, tuple) and isinstance(now, tuple):
        added = [_show(item) for item in now if item not in was]
        removed = [_show(item) for item in was if item not in now]
        if added or removed:
            return " ".join([*(f"+{item}" for item in added), *(f"-{item}" for item in removed)])
        return "reordered"
    return f"{_show(was)} -> {_show(now)}"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}s"
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
