"""The desired table kept from pass to pass, recomputed one service at a time.

At 10k real servers re-deriving the whole table every pass costs more than everything
else the daemon does at rest; here a service is recomputed only when something it
depends on changed: its config (a reload), the state of one of its real servers (a
verdict, a drain) or the clock (a slow start ramping). `recompute` says which services
came out different, and only those are planned and written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from director.config.model import Config, VirtualServerConfig
from director.ipvs.model import ServiceKey
from director.reconcile.desired import (
    DesiredService,
    DesiredTable,
    RealServerState,
    StateKey,
    desired_service,
    service_key,
)

DEFAULT_STATE = RealServerState()


class DrainedStates(Mapping[StateKey, RealServerState]):
    """The health states with the admin drains laid over them, without copying either."""

    def __init__(self, states: Mapping[StateKey, RealServerState], drained: set[StateKey]) -> None:
        self._states = states
        self._drained = drained

    def __getitem__(self, key: StateKey) -> RealServerState:
        state = self._states.get(key)
        if key in self._drained:
            base = state if state is not None else DEFAULT_STATE
            return base if base.admin_drained else RealServerState(base.up, base.up_since, True, base.dynamic_weight)
        if state is None:
            raise KeyError(key)
        return state

    def __iter__(self) -> Iterator[StateKey]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)


def _same(a: DesiredService, b: DesiredService) -> bool:
    return a.spec == b.spec and a.dests == b.dests and a.evict == b.evict and a.quorum_lost == b.quorum_lost


class DesiredCache:
    """`table` is the desired table; `touch` marks a virtual server to recompute."""

    def __init__(self) -> None:
        self.table: DesiredTable = {}
        self.drain_timeouts: dict[ServiceKey, float] = {}
        self.by_name: dict[str, VirtualServerConfig] = {}
        self._keys: dict[str, ServiceKey] = {}
        self._dirty: set[str] = set()
        self._gone: set[ServiceKey] = set()  # keys that left the desired table since the last recompute

    def follow(self, config: Config) -> set[str]:
        """Take `config`: the virtual servers added, changed or removed (by name) are marked."""
        new = {vs.name: vs for vs in config.virtual_servers}
        old = self.by_name
        changed = {name for name, vs in new.items() if old.get(name) is not vs and old.get(name) != vs}
        removed = self.by_name.keys() - new.keys()
        for name in changed | removed:
            old_key = self._keys.pop(name, None)
            if old_key is not None:
                self.table.pop(old_key, None)
                self.drain_timeouts.pop(old_key, None)
                self._gone.add(old_key)
        for name in changed:
            key = self._keys[name] = service_key(new[name])
            self.drain_timeouts[key] = new[name].drain_timeout
        self.by_name = new
        self._dirty |= changed
        self._dirty -= removed
        return changed | removed

    def touch(self, names: Iterable[str]) -> None:
        self._dirty.update(name for name in names if name in self.by_name)

    @property
    def pending(self) -> bool:
        return bool(self._dirty or self._gone)

    def recompute(self, states: Mapping[StateKey, RealServerState], now: float) -> set[ServiceKey]:
        """Recompute the marked services; the keys whose desired entry changed (or left)."""
        changed = set(self._gone)
        self._gone.clear()
        for name in self._dirty:
            vs = self.by_name[name]
            key = self._keys.get(name) or service_key(vs)
            old = self.table.get(key)
            fresh = desired_service(vs, states, now, old.quorum_lost if old is not None else None)
            if old is None or not _same(old, fresh):
                self.table[key] = fresh
                changed.add(key)
        self._dirty.clear()
        # a key that left under one name and came back under another is still desired
        return changed
