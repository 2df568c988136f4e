"""Tracked objects of an instance, as the state machine sees them: a key, a weight
and whether the object is fine.

The instance's own interface (weight 0: Fault while it is down), the configured
`track_interfaces` and `track_virtual_servers` (and the scripts and files of
`vrrp.trackers`). One place names the keys, so a
reload knows which ones its config still has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from vrrp import trackers
from vrrp.addresses import LinkInfo
from vrrp.fsm import Action, Instance

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig

Tracked = tuple[str, int, bool]  # key, weight, ok


def keys(cfg: VrrpInstanceConfig) -> frozenset[str]:
    """Every tracked object the config names."""
    found = {_iface(cfg.interface)}
    found |= {_track(t.name) for t in cfg.track_interfaces}
    found |= {_vs(t.name) for t in cfg.track_virtual_servers}
    return frozenset(found) | trackers.keys(cfg)


def link_names(cfgs: Iterable[VrrpInstanceConfig]) -> set[str]:
    """The links whose state the instances follow."""
    names: set[str] = set()
    for cfg in cfgs:
        names.add(cfg.interface)
        names.update(t.name for t in cfg.track_interfaces)
    return names


def links(cfg: VrrpInstanceConfig, infos: Mapping[str, LinkInfo | None]) -> list[Tracked]:
    """The instance's links as they are now; a missing link is down."""
    own = infos.get(cfg.interface)
    found = [(_iface(cfg.interface), 0, bool(own and own.up) or not cfg.track_own_interface)]
    for t in cfg.track_interfaces:
        info = infos.get(t.name)
        found.append((_track(t.name), t.weight, bool(info and info.up)))
    return found


def virtual_servers(cfg: VrrpInstanceConfig, quorum: Mapping[str, bool], only: str | None = None) -> list[Tracked]:
    """The instance's tracked virtual servers (or just `only`); one never heard of
    holds quorum."""
    return [(_vs(t.name), t.weight, quorum.get(t.name, True))
            for t in cfg.track_virtual_servers if only is None or t.name == only]


def apply(fsm: Instance, tracked: Iterable[Tracked], now: float) -> list[Action]:
    """Feed the tracked states to the state machine, in order."""
    return [act for key, weight, ok in tracked for act in fsm.set_tracked(key, weight, ok, now)]


def _iface(name: str) -> str:
    return f"iface:{name}"


def _track(name: str) -> str:
    return f"track:{name}"


def _vs(name: str) -> str:
    return f"vs:{name}"
