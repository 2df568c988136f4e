"""What the daemon mails about: VRRP transitions, real-server verdicts and quorum changes.

The three listeners sit beside the parts that already hear of these events (the VRRP
child's transitions, the health bridge's verdicts, the reconcile loop's quorum), read the
running config to decide with `director.mail.choose` whether the event mails, and hand an
event to the `Mailer`, which only queues it. Each listener costs a few dictionary lookups on
the loop and never raises into the part that called it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog

from director.config.model import Config, VirtualServerConfig
from director.daemon.mailer import Mailer
from director.mail.choose import alerts_instance, alerts_quorum, alerts_real_server, alerts_sync_group
from director.mail.compose import InstanceChange, QuorumChange, RealServerChange, SyncGroupChange
from director.reconcile.desired import RealServerState, StateKey, dest_key
from vrrp.notify import group_state

log = structlog.get_logger("directord")

F = TypeVar("F", bound=Callable[..., None])


def _never_raises(method: F) -> F:
    """A listener's bug is logged; the VRRP channel or the health bridge that called it goes on."""
    @functools.wraps(method)
    def guarded(*args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("mail alert listener failed", listener=method.__name__)
    return guarded  # type: ignore[return-value]


def healthy(vs: VirtualServerConfig, states: Mapping[StateKey, RealServerState]) -> tuple[int, int]:
    """(real servers up and undrained, the weight they add up to): what quorum is judged on."""
    count = weight = 0
    for rs in vs.real_servers:
        state = states.get((vs.name, dest_key(rs)), RealServerState())
        if state.up and not state.admin_drained:
            count += 1
            weight += state.dynamic_weight if state.dynamic_weight is not None else rs.weight
    return count, weight


class MailAlerts:
    """`config` is the running config; `states` the real-server states with drains applied;
    `check_failures` the failed samples of a probe so far (None: unknown); `vrrp_snapshot` the
    VRRP child's last snapshot."""

    def __init__(self, mailer: Mailer, config: Callable[[], Config],
                 states: Callable[[], Mapping[StateKey, RealServerState]],
                 check_failures: Callable[[tuple[str, str]], int | None],
                 vrrp_snapshot: Callable[[], Mapping[str, Any]] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self._mailer = mailer
        self._config = config
        self._states = states
        self._check_failures = check_failures
        self._vrrp_snapshot = vrrp_snapshot
        self._wall = wall
        self.instance_states: dict[str, str] = {}
        self.group_states: dict[str, str] = {}
        self._verdicts: set[tuple[str, str]] = set()  # real servers whose checks have given a verdict

    @_never_raises
    def on_vrrp_transition(self, instance: str, state: str) -> None:
        config = self._config()
        old = self.instance_states.get(instance)
        self.instance_states[instance] = state
        vi = next((v for v in config.vrrp_instances if v.name == instance), None)
        if vi is None or old == state:
            return
        if alerts_instance(config.global_, vi):
            view = (self._vrrp_snapshot() if self._vrrp_snapshot else {}).get("instances", {}).get(instance, {})
            self._mailer.submit(InstanceChange(
                instance, old, state, vi.vrid, vi.interface, view.get("priority", vi.priority),
                view.get("effective_priority"), view.get("master_address"),
                tuple(str(vip) for vip in vi.virtual_ips)), self._wall())
        if vi.sync_group:
            self._sync_group(config, vi.sync_group)

    def _sync_group(self, config: Config, group: str) -> None:
        """The group's state by the one rule its notify hooks follow too (vrrp.notify.group_state):
        fault as soon as one member is, master or backup once all are."""
        members = [vi.name for vi in config.vrrp_instances if vi.sync_group == group]
        state = group_state(self.instance_states.get(name, "init") for name in members)
        if state is None or self.group_states.get(group) == state:
            return
        self.group_states[group] = state
        table = next((g for g in config.vrrp_sync_groups if g.name == group), None)
        if alerts_sync_group(config.global_, table):
            self._mailer.submit(SyncGroupChange(group, state, tuple(members)), self._wall())

    @_never_raises
    def on_real_server(self, key: tuple[str, str], up: bool, reason: str) -> None:
        """A verdict (after the health bridge recorded it). A first verdict of "up" with no
        failed check before it is the warm-up of a new real server, not news."""
        first = key not in self._verdicts
        self._verdicts.add(key)
        if first and up and self._check_failures(key) == 0:
            return
        config = self._config()
        vs = config.virtual_server(key[0])
        rs = next((r for r in vs.real_servers if r.endpoint == key[1]), None) if vs else None
        if vs is None or rs is None or not alerts_real_server(config.global_, rs):
            return
        count, _ = healthy(vs, self._states())
        check = "+".join(check.type for check in vs.checks_of(rs))
        self._mailer.submit(RealServerChange(vs.name, vs.label, rs.endpoint, up, reason, check,
                                             vs.on_failure, count, len(vs.real_servers)), self._wall())

    @_never_raises
    def on_quorum(self, name: str, ok: bool, first: bool) -> None:
        config = self._config()
        vs = config.virtual_server(name)
        if vs is None or not alerts_quorum(config.global_, vs):
            return
        count, weight = healthy(vs, self._states())
        sorry = vs.sorry_server.endpoint if vs.sorry_server else None
        self._mailer.submit(QuorumChange(vs.name, vs.label, ok, first, weight, vs.quorum, sorry, count,
                                         len(vs.real_servers)), self._wall())
