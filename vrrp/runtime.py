"""The asyncio edge: ties VRRP instances to sockets, timers, netlink and hooks.

Each instance's sans-IO `Instance` decides, and so does the sans-IO `Handover` for
a graceful stop; this module only carries out their actions (send, add/remove VIPs,
GARP, notify) and feeds them events (packets, timer expiry, link changes, tracked
virtual servers). Its parts: `vrrp.live` (one instance's record and status view),
`vrrp.adverts` (sending and the stop signal's farewell), `vrrp.garp.Announcer`,
`vrrp.tracking`, `vrrp.socket_table` and `vrrp.notify.Hooks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from vrrp import ah, codec, trackers, tracking
from vrrp.addresses import AddressManager, LinkInfo, LinkMonitor
from vrrp.adverts import Advertiser
from vrrp.carried import Carrier, items_of, kind_of
from vrrp.fsm import (
    OWNER_PRIORITY,
    SHUTDOWN_PRIORITY,
    Action,
    AddVips,
    DropVips,
    Instance,
    RemoveVips,
    SendAdvert,
    SendGarp,
    State,
    SyncGroup,
    Transition,
)
from vrrp.garp import Announcer, PacketSender
from vrrp.handover import Handover, Release
from vrrp.live import Live, new_instance, params_of
from vrrp.notify import Hooks, fifo_line, group_commands, group_state, instance_commands
from vrrp.notify_fifo import NotifyFifo
from vrrp.socket_table import SocketTable
from vrrp.sockets import Received, VrrpSocket
from vrrp.vmac import VmacTable

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig

log = structlog.get_logger("vrrp")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_PHASE: dict[type, int] = {SendAdvert: 0, RemoveVips: 1, DropVips: 1, AddVips: 1, SendGarp: 2, Transition: 3}
TransitionHook = Callable[[str, Transition], None]
MAX_READS_PER_WAKEUP = 64
PRIMARY_WAIT = 5.0  # seconds to wait for the new instances' own addresses, at start or reload
NOTIFY_DRAIN = 2.0  # seconds a stopping runtime waits for running notify hooks


class VrrpRuntime:
    """All VRRP instances of one daemon. Use `run(stop)`; hooks are thread-unsafe
    and must be called from the event loop, apart from `say_farewell`."""

    def __init__(
        self,
        instances: Sequence[VrrpInstanceConfig],
        on_transition: TransitionHook | None = None,
    ) -> None:
        self.configs = tuple(instances)
        self.on_transition = on_transition
        self.live: dict[str, Live] = {}
        self.groups: dict[str, SyncGroup] = {}
        self.sockets = SocketTable(self._on_readable)
        self.unmatched: Counter[str] = Counter()
        self.vs_ok: dict[str, bool] = {}  # tracked virtual server -> quorum held
        self.trackers = trackers.TrackerStates()  # tracked scripts and files, as the daemon reports them
        self.held: set[str] = set()  # instances not started: waiting to hear of their trackers
        self.addrs: AddressManager | None = None
        self.vmacs: VmacTable | None = None
        self.links: LinkMonitor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.adverts = Advertiser()
        self.hooks = Hooks()
        self.fifo = NotifyFifo()
        self.group_states: dict[str, str] = {}  # sync group -> the state its hooks last saw
        self.notified: dict[str, str] = {}  # instance -> the state its hooks last saw
        self.group_hooks: dict[str, asyncio.Task] = {}  # sync group -> its latest hook run
        self.handover: Handover[Live] = Handover()
        self._handed_over = asyncio.Event()  # every held VIP released
        self._started = False  # every instance has started: a resign now means something

    # --- public hooks for the director -----------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A plain-data view of every instance, for status output and metrics."""
        return {"instances": {name: lv.view() for name, lv in self.live.items()},
                "unmatched_errors": dict(self.unmatched)}

    def say_farewell(self) -> None:
        """Send every master's priority-0 advert now: a stop signal's first act, from the
        signal thread (see `vrrp.stop_signals`), before the loop hears of the stop. Those
        instances send nothing more, so `resign` sends no second priority 0: each one
        would restart the backup's Skew_Time."""
        self.adverts.farewell()

    def failover(self, instance_name: str) -> bool:
        """Gracefully give up master for one instance; False if it is not master."""
        lv = self.live.get(instance_name)
        if lv is None or lv.fsm.state is not State.MASTER:
            return False
        self._apply(lv, lv.fsm.give_up(self._now()))
        return True

    def release_hold(self, instance_name: str) -> bool:
        """Lift the hold a failover left (see `Instance.give_up`); False if there was none."""
        lv = self.live.get(instance_name)
        if lv is None or not lv.fsm.hold_preempt:
            return False
        lv.fsm.hold_preempt = False
        return True

    def set_tracked_virtual_server(self, name: str, ok: bool) -> None:
        """Quorum of a tracked virtual server changed (ok=False: lost)."""
        self.vs_ok[name] = ok  # remembered for instances opened later
        for lv in self.live.values():
            self._track_each(lv, tracking.virtual_servers(lv.cfg, self.vs_ok, only=name))

    def set_tracker(self, kind: trackers.Kind, name: str, value: bool | int) -> None:
        """A tracked script's state (ok) or a tracked file's value changed; an instance that
        was waiting for it may start now."""
        self.trackers.set(kind, name, value)
        for lv in self.live.values():
            self._track_each(lv, self.trackers.tracked(lv.cfg, only=(kind, name)))
        for lv in [self.live[n] for n in sorted(self.held) if n in self.live]:
            self._start(lv, self._now())

    def _start(self, lv: Live, now: float) -> None:
        """Start the instance, or hold it in INIT while a tracker that could fault it is unknown."""
        if self.handover.resigned:
            return  # stopping: nothing starts now
        waiting = self.trackers.waiting_for(lv.cfg)
        if waiting:
            if lv.name not in self.held:
                log.info("vrrp instance waiting for its trackers", instance=lv.name, trackers=waiting)
            self.held.add(lv.name)
            return
        self.held.discard(lv.name)
        self._apply(lv, lv.fsm.start(now))

    def _track_each(self, lv: Live, tracked: list[tracking.Tracked]) -> None:
        """One tracked object at a time, each followed by its sync group."""
        for item in tracked:
            self._apply(lv, tracking.apply(lv.fsm, [item], self._now()))

    # --- lifecycle ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then masters send priority 0 and hand their VIPs over."""
        self.loop = asyncio.get_running_loop()
        try:
            self.addrs = AddressManager()
            self.vmacs = VmacTable(self.addrs)
            await self._open_all()
            self.links = LinkMonitor()
            self.loop.add_reader(self.links.fileno(), self._on_links)
            self._refresh_all_links()
            self._remove_stale_vips()
            now = self._now()
            for lv in self.live.values():
                self._start(lv, now)
            self._started = True
            await stop.wait()
            await self._hand_over()
        finally:
            self._shutdown()
            await self.hooks.drain(NOTIFY_DRAIN)  # the last hooks (state "init"), briefly

    def resign(self) -> None:
        """Begin a graceful stop: every master sends priority 0 now (unless `say_farewell`
        has) and holds its VIPs for the hand-over (`vrrp.handover`). Called by the stop
        signal's loop callback and by `run`; once only, and only after the instances have
        started."""
        if self.handover.resigned or not self._started:
            return
        now = self._now()
        self._run(self.handover.resign(now, [(lv, lv.fsm.interval_cs / 100, lv.fsm.shutdown(now))
                                             for lv in self.live.values()]))
        log.info("vrrp stopping", holding_vips=sorted(lv.name for lv in self.handover.holding))

    async def _hand_over(self) -> None:
        """Resign, then wait for the backups' claims, at most until the hand-over's deadline."""
        self.resign()
        deadline = self.handover.deadline
        if deadline is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handed_over.wait(), max(0.0, deadline - self._now()))
        self._release(self.handover.deadline_reached(self._now()))

    def _release(self, releases: list[Release[Live]]) -> None:
        if not releases:
            return
        for rel in releases:
            log.info("handing over: VIPs released", instance=rel.key.name, reason=rel.reason)
            self._run([(rel.key, act) for act in rel.actions])
        if not self.handover.holding:
            self._handed_over.set()

    def _remove_stale_vips(self) -> None:
        """A run killed outright (SIGKILL, power cut of the process) leaves its VIPs on the
        interface; a backup that kept them would answer ARP for the master's addresses."""
        for lv in self.live.values():
            if lv.cfg.priority != OWNER_PRIORITY:
                self._vips(lv, add=False)

    async def _open_all(self) -> None:
        for lv in await self._prepare(self.configs):
            self.live[lv.name] = lv
            self._seed_tracked_vs(lv)
        self._regroup()

    def _seed_tracked_vs(self, lv: Live) -> None:
        """Apply known virtual server quorum states, scripts and files to a new or updated instance."""
        self._track_each(lv, tracking.virtual_servers(lv.cfg, self.vs_ok))
        self._track_each(lv, self.trackers.tracked(lv.cfg))

    def _regroup(self) -> None:
        by_group: dict[str, list[Instance]] = {}
        for lv in self.live.values():
            lv.fsm.gate = None
            if lv.cfg.sync_group:
                by_group.setdefault(lv.cfg.sync_group, []).append(lv.fsm)
        self.groups = {name: SyncGroup(name, m) for name, m in by_group.items()}

    # --- reload ---------------------------------------------------------------------

    async def reconfigure(self, instances: Sequence[VrrpInstanceConfig]) -> None:
        """Apply a new set of instances without disturbing unchanged ones, atomically.

        Same identity (name, interface, VRID, version, family, source, sync group, auth type):
        updated in place (`Instance.reconfigure`), a master keeps its role and swaps
        VIPs with a fresh GARP. Otherwise the old instance resigns (priority 0) and the
        new one starts. Every new instance is opened first: if one cannot be (a missing
        interface, no address, a socket refused), nothing is retired or changed and the
        error is raised, so the running set still matches the parent's old config.
        Must be called while `run` is running.
        """
        assert self.loop is not None
        wanted = {c.name: c for c in instances}
        replaced = [lv for name, lv in self.live.items()
                    if name not in wanted or _identity(wanted[name]) != _identity(lv.cfg)]
        kept = [lv for lv in self.live.values() if lv not in replaced]
        fresh = await self._prepare([cfg for name, cfg in wanted.items() if name not in {lv.name for lv in kept}])
        for lv in replaced:
            self._retire(lv)
        for lv in fresh:
            self.live[lv.name] = lv
        for lv in kept:
            self._update(lv, wanted[lv.name])
        for lv in self.live.values():
            self._seed_tracked_vs(lv)
        self.configs = tuple(instances)
        self.sockets.close_unused([lv.sock for lv in self.live.values()])
        self._regroup()
        self._refresh_all_links()
        self.held &= set(self.live)
        now = self._now()
        for lv in [*fresh, *(self.live[n] for n in sorted(self.held) if self.live[n] not in fresh)]:
            self._start(lv, now)

    async def _prepare(self, configs: Sequence[VrrpInstanceConfig]) -> list[Live]:
        """Open each instance (not yet live, not started); on any failure close what was
        opened and raise. One PRIMARY_WAIT for all, so the parent's timeout bounds it."""
        deadline = time.monotonic() + PRIMARY_WAIT
        opened: list[Live] = []
        try:
            for cfg in configs:
                opened.append(await self._open(cfg, deadline))
        except BaseException:
            for lv in opened:
                lv.announcer.close()
                self._release_vmac(lv.cfg)
            self.sockets.close_unused([lv.sock for lv in self.live.values()])
            raise
        return opened

    def _update(self, lv: Live, cfg: VrrpInstanceConfig) -> None:
        if cfg != lv.cfg:
            lv.cfg = cfg
            self._in_order(lv, lv.fsm.reconfigure(params_of(cfg), self._now()))

    def _retire(self, lv: Live) -> None:
        self._apply(lv, lv.fsm.shutdown(self._now()), follow=False)
        self._cancel_timer(lv)
        lv.announcer.close()
        self._release_vmac(lv.cfg)
        del self.live[lv.name]

    async def _open(self, cfg: VrrpInstanceConfig, deadline: float) -> Live:
        assert self.addrs is not None
        link = self.addrs.link(cfg.interface)
        if link is None:
            raise OSError(f"vrrp_instance {cfg.name}: no interface {cfg.interface!r}")
        primary = cfg.unicast_src or await self._wait_primary(cfg, link.index, deadline)
        link_local = None  # an IPv6 VMAC gets the base's link-local address
        if cfg.use_vmac and cfg.family == 6:
            link_local = primary if primary.is_link_local else await self._wait_primary(cfg, link.index, deadline)
        vmac = self._open_vmac(cfg, link, link_local)
        try:
            carrier = vmac or link  # where the VIPs go, and their announcements' MAC
            sock = self.sockets.get(cfg, vmac.index if vmac and not cfg.vmac_xmit_base else link.index)
            announcer = Announcer(PacketSender(cfg.address_interface))
        except BaseException:
            self._release_vmac(cfg)
            raise
        log.info("vrrp instance ready", instance=cfg.name, interface=cfg.interface,
                 vrid=cfg.vrid, version=cfg.version, primary=str(primary), vmac=cfg.vmac_name or None)
        return Live(cfg, new_instance(cfg, primary), carrier.index, carrier.mac, primary, sock, announcer,
                    session=ah.Session() if cfg.auth_type == "ah" else None)

    def _open_vmac(self, cfg: VrrpInstanceConfig, base: LinkInfo, link_local: IPAddress | None) -> LinkInfo | None:
        """The instance's VMAC (`vrrp.vmac`), made or adopted; None without use_vmac."""
        if not cfg.use_vmac:
            return None
        assert self.vmacs is not None
        return self.vmacs.open(cfg, base, link_local)

    def _release_vmac(self, cfg: VrrpInstanceConfig) -> None:
        if cfg.use_vmac and self.vmacs is not None:
            self.vmacs.release(cfg.vmac_name)

    async def _wait_primary(self, cfg: VrrpInstanceConfig, ifindex: int, deadline: float) -> IPAddress:
        """The interface's own address; IPv6 link-local may still be tentative."""
        assert self.addrs is not None
        vips = {v.address.ip for v in cfg.carried_addresses}
        while True:
            addr = self.addrs.primary_address(ifindex, cfg.family, vips)
            if addr is not None:
                return addr
            if time.monotonic() > deadline:
                raise OSError(f"vrrp_instance {cfg.name}: {cfg.interface} has no usable address")
            await asyncio.sleep(0.1)

    def _shutdown(self) -> None:
        now = self._now() if self.loop else 0.0
        with contextlib.suppress(Exception):  # every master's priority 0 first, then the VIPs, then the logs
            self._run([(lv, act) for lv in self.live.values() for act in lv.fsm.shutdown(now)])
        for lv in self.live.values():
            self._cancel_timer(lv)
            lv.announcer.close()
        self.sockets.close()
        if self.vmacs is not None:  # after the VIPs came off them
            self.vmacs.close()
        if self.links is not None:
            if self.loop:
                self.loop.remove_reader(self.links.fileno())
            self.links.close()
        if self.addrs is not None:
            self.addrs.close()
        self.fifo.close()

    # --- events in ----------------------------------------------------------------

    def _now(self) -> float:
        return self.loop.time() if self.loop else time.monotonic()

    def _on_readable(self, sock: VrrpSocket) -> None:
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                got = sock.recv()
            except codec.DecodeError as exc:
                self.unmatched[exc.reason.value] += 1
                continue
            except OSError:
                return
            if got is None:
                return
            self._on_packet(sock, got)

    def _find(self, sock: VrrpSocket, data: bytes) -> Live | None:
        if len(data) < 2:
            return None
        version, vrid = data[0] >> 4, data[1]
        for lv in self.live.values():
            if lv.sock is sock and lv.cfg.vrid == vrid and lv.cfg.version == version:
                return lv
        return None

    def _on_packet(self, sock: VrrpSocket, got: Received) -> None:
        found = self._find(sock, got.data)
        try:
            lv, advert = _accepted(found, got)
        except codec.DecodeError as exc:
            (found.counters.errors if found else self.unmatched)[exc.reason.value] += 1
            log.debug("vrrp packet dropped", reason=exc.reason.value, src=str(got.src),
                      detail=exc.detail)
            return
        lv.counters.adverts_received += 1
        if advert.version == 3 and advert.interval_cs != lv.fsm.interval_cs:
            lv.counters.interval_mismatch += 1
        if advert.priority == SHUTDOWN_PRIORITY:
            log.info("peer resigned (priority 0)", instance=lv.name, src=str(got.src))
        self._release(self.handover.advert(lv, advert.priority, got.src, self._now()))
        arrived = got.arrived if got.arrived is not None else self._now()
        self._apply(lv, lv.fsm.receive(advert, got.src, arrived))

    def _on_timer(self, lv: Live) -> None:
        lv.timer = None
        self._apply(lv, lv.fsm.tick(self._now()))

    def _on_links(self) -> None:
        """Link events arrived (all pending ones are read at once): re-read the links we
        care about, which also covers events lost to a full socket buffer."""
        assert self.links is not None
        if self.links.read():
            self._refresh_all_links()

    def _refresh_all_links(self) -> None:
        assert self.addrs is not None
        names = tracking.link_names(lv.cfg for lv in self.live.values())
        infos = {n: self.addrs.link(n) for n in names}
        now = self._now()
        for lv in self.live.values():
            self._apply_links(lv, infos, now)

    def _apply_links(self, lv: Live, infos: dict[str, LinkInfo | None], now: float) -> None:
        own = infos.get(lv.cfg.interface)
        if own is not None and not lv.cfg.use_vmac:  # a VMAC's MAC is the VRID's, whatever the base has
            lv.mac = own.mac
        self._apply(lv, tracking.apply(lv.fsm, tracking.links(lv.cfg, infos), now))

    # --- actions out ----------------------------------------------------------------

    def _apply(self, lv: Live, actions: list[Action], follow: bool = True) -> None:
        """Carry out an instance's actions, and its sync group's, phase by phase (`_run`)."""
        batch = [(lv, act) for act in actions]
        if follow and lv.cfg.sync_group in self.groups:
            extra = self.groups[lv.cfg.sync_group].follow(lv.fsm, actions, self._now())
            batch += [(self.live[name], act) for name, acts in extra.items() for act in acts]
        self._run(batch, also=lv)  # its deadline may have moved without any action

    def _run(self, batch: list[tuple[Live, Action]], also: Live | None = None) -> None:
        """Every member's adverts first, then every VIP change, then every gratuitous ARP,
        then the transitions (logs, hooks): a sync group moves as one, its members' ARPs
        microseconds apart. Were a NAT director's front VIP announced before the real
        servers' gateway VIP, the first replies would still go to the old master."""
        for lv, act in sorted(batch, key=lambda item: _PHASE[type(item[1])]):
            if isinstance(act, Transition):
                self._transition(lv, act)
            else:
                self._do(lv, act)
        touched = {id(lv): lv for lv, _act in batch}  # each instance's timer, re-armed once
        if also is not None:
            touched[id(also)] = also
        for lv in touched.values():
            self._arm(lv)

    def _in_order(self, lv: Live, actions: list[Action]) -> None:
        """Carry out one instance's actions as listed: a reload's VIP swap comes before
        the advert that tells the peers about it."""
        for act in actions:
            self._do(lv, act)
        self._arm(lv)

    def _do(self, lv: Live, act: Action) -> None:
        if isinstance(act, SendAdvert):
            self.adverts.send(lv.name, lv.route, lv.advert(act.priority), lv.counters, lv.is_master)
        elif isinstance(act, AddVips):
            self._vips(lv, add=True)
        elif isinstance(act, RemoveVips):
            lv.announcer.cancel(refresh=True)
            self._vips(lv, add=False)
        elif isinstance(act, DropVips):
            self._vips_change(lv, act.vips, add=False)
        elif isinstance(act, SendGarp):
            assert self.loop is not None
            self._learn_devices(lv)
            lv.announcer.start(self.loop, lv, lower_prio=act.lower_prio)

    def _vips(self, lv: Live, add: bool) -> None:
        """All the instance carries (addresses, routes, rules), added or removed before this returns."""
        t0 = time.monotonic()
        self._vips_change(lv, items_of(lv.cfg), add)
        log.debug("vips " + ("added" if add else "removed"), instance=lv.name,
                  ms=round((time.monotonic() - t0) * 1000, 2))

    def _vips_change(self, lv: Live, vips: Sequence[Any], add: bool) -> None:
        assert self.addrs is not None
        try:
            refused = Carrier(self.addrs).change(vips, add, lv.cfg.address_interface, lv.ifindex)
        except Exception as exc:  # a netlink failure must not kill the instance
            lv.counters.errors["vip_" + ("add" if add else "remove")] += 1
            log.error("vip change failed", instance=lv.name, add=add, error=str(exc))
            return
        for one in refused:  # a kernel refusal of one item leaves the others in place
            kind = kind_of(one.item)
            lv.counters.errors[f"{kind}_" + ("add" if add else "remove")] += 1
            log.error(f"{kind} change failed", instance=lv.name, **{kind: str(one.item)}, add=add, error=one.error)

    def _learn_devices(self, lv: Live) -> None:
        """MAC and IPv6 link-local of the other devices the instance announces on, read afresh on
        each announcement (a device may have been replaced); none to read for most instances."""
        assert self.addrs is not None
        lv.devices = {}
        for dev in lv.other_devices():
            try:
                link = self.addrs.link(dev)
                if link is not None:
                    lv.devices[dev] = (link.mac, self.addrs.primary_address(link.index, 6, set()))
            except OSError as exc:
                log.warning("cannot read device for announcements", instance=lv.name, dev=dev, error=str(exc))

    def _transition(self, lv: Live, tr: Transition) -> None:
        if tr.new is not State.MASTER:
            self.adverts.forget(lv.name)
        lv.counters.transitions += 1
        lv.state_since_wall = time.time()
        log.info("vrrp transition", instance=lv.name, old=tr.old.value, new=tr.new.value,
                 priority=tr.priority, reason=tr.reason)
        self._notify(lv, tr.new.value, tr.priority)
        if self.on_transition is not None:
            try:
                self.on_transition(lv.name, tr)
            except Exception:
                log.exception("on_transition hook failed", instance=lv.name)

    def _notify(self, lv: Live, state: str, priority: int) -> None:
        """Hooks and the FIFO line of an instance's new state, then its sync group's if the
        group as a whole changed state."""
        self._run_hooks(lv, instance_commands(lv.cfg, state, priority))
        self._fifo(lv, fifo_line("INSTANCE", lv.name, state, priority))
        self.notified[lv.name] = state
        group = lv.cfg.sync_group
        if not group:
            return
        # from the states notified so far, not the members' own: a group moves as one, and
        # its line must come after each member's
        now = group_state(self.notified.get(m.name, "init") for m in self.live.values() if m.cfg.sync_group == group)
        if now is None or now == self.group_states.get(group):
            return
        self.group_states[group] = now
        hooks = lv.cfg.sync_group_hooks
        if hooks is not None and self.loop is not None and self.loop.is_running():
            commands = group_commands(hooks, now)
            if commands:
                self.group_hooks[group] = self.hooks.start(self.loop, self.group_hooks.get(group), commands)
        self._fifo(lv, fifo_line("GROUP", group, now, 0))

    def _run_hooks(self, lv: Live, commands: list[list[str]]) -> None:
        if commands and self.loop is not None and self.loop.is_running():
            lv.notify_task = self.hooks.start(self.loop, lv.notify_task, commands)

    def _fifo(self, lv: Live, line: bytes) -> None:
        if lv.cfg.notify_fifo and not self.fifo.write(lv.cfg.notify_fifo, line):
            lv.counters.errors["notify_fifo_dropped"] += 1

    def _arm(self, lv: Live) -> None:
        """Point the instance's single timer at the FSM's next deadline."""
        assert self.loop is not None
        self._cancel_timer(lv)
        deadline = lv.fsm.deadline
        if deadline is not None:
            lv.timer = self.loop.call_at(deadline, self._on_timer, lv)

    @staticmethod
    def _cancel_timer(lv: Live) -> None:
        if lv.timer is not None:
            lv.timer.cancel()
            lv.timer = None


def _accepted(lv: Live | None, got: Received) -> tuple[Live, codec.Advert]:
    """The advert in `got` if it is valid for instance `lv`; DecodeError says why not."""
    if lv is not None:
        _authenticate(lv, got)
    auth_type, auth_data = lv.auth if lv else (None, b"")
    routed = lv is not None and bool(lv.cfg.unicast_peers)
    advert = codec.decode(
        got.data, src=got.src, dst=got.dst, ttl=got.ttl,
        accept_v2_checksum=bool(lv and lv.cfg.v3_checksum_as_v2),
        auth_type=auth_type, auth_data=auth_data,
        unicast_ttl=(lv.cfg.unicast_min_ttl, lv.cfg.unicast_max_ttl) if lv and routed else (255, 255),
    )
    if lv is None:
        raise codec.DecodeError(codec.Reason.WRONG_VRID, f"vrid {advert.vrid}")
    if got.src == lv.primary:
        raise codec.DecodeError(codec.Reason.OWN_PACKET)
    if lv.cfg.unicast_peers and got.src not in lv.cfg.unicast_peers:
        raise codec.DecodeError(codec.Reason.UNKNOWN_PEER, str(got.src))
    vips = tuple(v.ip for v in lv.cfg.virtual_ips) if lv.cfg.check_advert_addresses else None
    codec.check_instance(advert, vrid=lv.cfg.vrid, version=lv.cfg.version, interval_cs=lv.fsm.interval_cs,
                         addresses=vips, strict_interval=not lv.cfg.adopt_master_interval)
    return lv, advert


def _authenticate(lv: Live, got: Received) -> None:
    """An AH instance verifies the AH header before anything else in the packet is trusted, as
    keepalived does; a PASS instance's password is the codec's to compare."""
    if lv.session is None:
        if got.sealed is not None:
            raise codec.DecodeError(codec.Reason.BAD_AUTH, "an AH packet, but auth_type is not ah")
        return
    if got.sealed is None or not isinstance(got.src, ipaddress.IPv4Address):
        raise codec.DecodeError(codec.Reason.BAD_AUTH, "no AH header, but auth_type is ah")
    lv.session.check(got.sealed, got.src, lv.auth[1])


def _identity(cfg: VrrpInstanceConfig) -> tuple:
    """What a reload cannot change in place (the auth type: AH adverts use another socket; the
    VMAC: the VIPs, their MAC and the adverts' link)."""
    return (cfg.interface, cfg.vrid, cfg.version, cfg.family, cfg.unicast_src, cfg.sync_group, cfg.auth_type,
            cfg.vmac_name, cfg.advert_interface)


async def run_vrrp(
    instances: Sequence[VrrpInstanceConfig],
    stop: asyncio.Event,
    on_transition: TransitionHook | None = None,
) -> None:
    """Run the given instances until `stop` is set (then shut down gracefully)."""
    await VrrpRuntime(instances, on_transition).run(stop)
