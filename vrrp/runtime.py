"""The asyncio edge: ties VRRP instances to sockets, timers, netlink and hooks.

Each instance's sans-IO `Instance` decides; this module only carries out its
actions (send, add/remove VIPs, GARP, notify) and feeds it events (packets,
timer expiry, link changes, tracked virtual servers). Counters live in one
snapshot so `directord status` and metrics read the same numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from vrrp import codec
from vrrp.addresses import AddressManager, LinkInfo, LinkMonitor
from vrrp.fsm import (
    OWNER_PRIORITY,
    SHUTDOWN_PRIORITY,
    Action,
    AddVips,
    Instance,
    RemoveVips,
    SendAdvert,
    SendGarp,
    State,
    SyncGroup,
    Transition,
)
from vrrp.garp import PacketSender, frames_for
from vrrp.notify import run_notify
from vrrp.sockets import Received, VrrpSocket

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig

log = structlog.get_logger("vrrp")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_PHASE: dict[type, int] = {SendAdvert: 0, RemoveVips: 1, AddVips: 1, SendGarp: 2, Transition: 3}
TransitionHook = Callable[[str, Transition], None]
MAX_READS_PER_WAKEUP = 64
PRIMARY_WAIT = 5.0  # seconds to wait for the interface's own address at start
NOTIFY_DRAIN = 2.0  # seconds a stopping runtime waits for running notify hooks
HANDOVER_MARGIN = 0.15  # seconds a stopping master waits past one advert interval for its backup's claim


@dataclass
class Counters:
    adverts_sent: int = 0
    adverts_received: int = 0
    garps_sent: int = 0
    transitions: int = 0
    send_errors: int = 0
    # v3 adverts whose interval differs from ours: accepted (RFC 5798 adopts the
    # master's interval) but worth showing, as it usually means a config drift.
    interval_mismatch: int = 0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Farewell:
    """A master's priority-0 advert, encoded while it is master so that a stop signal
    can send it at once, from another thread (`VrrpRuntime.say_farewell`)."""

    key: tuple  # what it was encoded from: re-encoded only when that changes
    sock: VrrpSocket
    src: IPAddress
    packets: tuple[tuple[bytes, IPAddress], ...]  # payload, destination
    counters: Counters


@dataclass
class _Live:
    """One instance's runtime state next to its pure state machine."""

    cfg: VrrpInstanceConfig
    fsm: Instance
    counters: Counters
    ifindex: int
    mac: bytes
    primary: IPAddress
    sock: VrrpSocket
    sender: PacketSender
    timer: asyncio.TimerHandle | None = None
    garp_task: asyncio.Task | None = None
    refresh_task: asyncio.Task | None = None
    notify_task: asyncio.Task | None = None
    state_since_wall: float = field(default_factory=time.time)

    @property
    def dst(self) -> tuple[IPAddress, ...]:
        if self.cfg.unicast_peers:
            return tuple(self.cfg.unicast_peers)
        return (codec.MCAST_V4 if self.cfg.family == 4 else codec.MCAST_V6,)


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
        self.live: dict[str, _Live] = {}
        self.groups: dict[str, SyncGroup] = {}
        self.sockets: dict[tuple[str, int], VrrpSocket] = {}
        self.unmatched: Counter[str] = Counter()
        self.vs_ok: dict[str, bool] = {}  # tracked virtual server -> quorum held
        self.addrs: AddressManager | None = None
        self.links: LinkMonitor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        # A stopping master's VIP removal (and transition), held until its backup claims
        # the VIPs with an advert: see `_hand_over`.
        self._held: dict[str, list[tuple[_Live, Action]]] = {}
        self._all_claimed = asyncio.Event()
        self._handover_deadline = 0.0
        self._started = False  # every instance has started: a resign now means something
        self._resigned = False
        # Masters' priority-0 adverts, ready for a stop signal. The dict is replaced,
        # never changed, so the signal thread reads a consistent one without a lock.
        self._farewells: dict[str, _Farewell] = {}
        self._farewelled: set[str] = set()  # instances silent from now on
        self._send_lock = threading.Lock()  # no advert of theirs may follow a farewell

    # --- public hooks for the director -----------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A plain-data view of every instance, for status output and metrics."""
        out: dict[str, Any] = {"instances": {}, "unmatched_errors": dict(self.unmatched)}
        for name, lv in self.live.items():
            c, f = lv.counters, lv.fsm
            out["instances"][name] = {
                "state": f.state.value,
                "priority": f.priority,
                "effective_priority": f.effective_priority,
                "master_address": str(f.master_address) if f.master_address else None,
                "state_since": lv.state_since_wall,
                "interface": lv.cfg.interface,
                "vrid": lv.cfg.vrid,
                "version": lv.cfg.version,
                "adverts_sent": c.adverts_sent,
                "adverts_received": c.adverts_received,
                "garps_sent": c.garps_sent,
                "transitions": c.transitions,
                "send_errors": c.send_errors,
                "interval_mismatch": c.interval_mismatch,
                "errors": dict(c.errors),
            }
        return out

    def say_farewell(self) -> None:
        """Send every master's priority-0 advert now: a stop signal's first act, from the
        signal thread (see `vrrp.stop_signals`), before the loop hears of the stop. Those
        instances send nothing more, so `resign` sends no second priority 0: each one
        would restart the backup's Skew_Time."""
        with self._send_lock:
            for name, farewell in self._farewells.items():
                _send_all(name, farewell.sock, farewell.src, farewell.packets, farewell.counters)
                self._farewelled.add(name)

    def failover(self, instance_name: str) -> bool:
        """Gracefully give up master for one instance; False if it is not master."""
        lv = self.live.get(instance_name)
        if lv is None or lv.fsm.state is not State.MASTER:
            return False
        self._apply(lv, lv.fsm.give_up(self._now()))
        return True

    def set_tracked_virtual_server(self, name: str, ok: bool) -> None:
        """Quorum of a tracked virtual server changed (ok=False: lost)."""
        self.vs_ok[name] = ok  # remembered for instances opened later
        for lv in self.live.values():
            for t in lv.cfg.track_virtual_servers:
                if t.name == name:
                    self._apply(lv, lv.fsm.set_tracked(f"vs:{name}", t.weight, ok, self._now()))

    def _seed_tracked_vs(self, lv: _Live) -> None:
        """Apply known virtual server quorum states to a new or updated instance."""
        for t in lv.cfg.track_virtual_servers:
            ok = self.vs_ok.get(t.name, True)
            self._apply(lv, lv.fsm.set_tracked(f"vs:{t.name}", t.weight, ok, self._now()))

    # --- lifecycle ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then masters send priority 0 and hand their VIPs over."""
        self.loop = asyncio.get_running_loop()
        try:
            self.addrs = AddressManager()
            await self._open_all()
            self.links = LinkMonitor()
            self.loop.add_reader(self.links.fileno(), self._on_links)
            self._refresh_all_links()
            self._remove_stale_vips()
            now = self._now()
            for lv in self.live.values():
                self._apply(lv, lv.fsm.start(now))
            self._started = True
            await stop.wait()
            await self._hand_over()
        finally:
            self._shutdown()
            if self._tasks:  # let the last notify hooks (state "init") finish, briefly
                with contextlib.suppress(BaseException):
                    await asyncio.wait(set(self._tasks), timeout=NOTIFY_DRAIN)

    def resign(self) -> None:
        """Begin a graceful stop: every master sends priority 0 now (unless `say_farewell`
        has) and holds its VIPs for the hand-over (see `_hand_over`). Called by the stop
        signal's loop callback and by `run`; once only, and only after the instances have
        started."""
        if self._resigned or not self._started:
            return
        self._resigned = True
        now = self._now()
        batch = [(lv, act) for lv in self.live.values() for act in lv.fsm.shutdown(now)]
        holders = {lv.cfg.name for lv, act in batch if isinstance(act, RemoveVips)}
        self._held = {name: [item for item in batch if item[0].cfg.name == name and not isinstance(item[1], SendAdvert)]
                      for name in holders}
        self._all_claimed.clear()
        wait = max((self.live[n].fsm.interval_cs / 100 for n in holders), default=0.0) + HANDOVER_MARGIN
        self._handover_deadline = asyncio.get_running_loop().time() + wait
        self._run([item for item in batch if isinstance(item[1], SendAdvert) or item[0].cfg.name not in holders])
        log.info("vrrp stopping", holding_vips=sorted(holders))

    async def _hand_over(self) -> None:
        """A graceful stop makes before it breaks: every master sends priority 0 at once
        but keeps its VIPs until its backup claims them with its first advert (after
        Skew_Time, less than one advert interval), or one interval and a margin have
        passed. RFC 5798 drops them at once, which leaves nobody answering for the VIP
        for that Skew_Time: new connections sent then are lost. Both hold the VIPs only
        while the backup's advert is on its way here; connection sync carries what
        either accepted."""
        self.resign()
        if self._held:
            left = self._handover_deadline - asyncio.get_running_loop().time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_claimed.wait(), max(0.0, left))
        self._release_held("no claim in time")

    def _release_held(self, why: str, name: str | None = None) -> None:
        for held_name in [name] if name is not None else list(self._held):
            held = self._held.pop(held_name, None)
            if held:
                log.info("handing over: VIPs released", instance=held_name, reason=why)
                self._run(held)
        if not self._held:
            self._all_claimed.set()

    def _remove_stale_vips(self) -> None:
        """A run killed outright (SIGKILL, power cut of the process) leaves its VIPs on the
        interface; a backup that kept them would answer ARP for the master's addresses."""
        for lv in self.live.values():
            if lv.cfg.priority != OWNER_PRIORITY:
                self._vips(lv, add=False)

    async def _open_all(self) -> None:
        assert self.addrs is not None
        for cfg in self.configs:
            self.live[cfg.name] = await self._open(cfg)
            self._seed_tracked_vs(self.live[cfg.name])
        self._regroup()

    def _regroup(self) -> None:
        by_group: dict[str, list[Instance]] = {}
        for lv in self.live.values():
            lv.fsm.gate = None
            if lv.cfg.sync_group:
                by_group.setdefault(lv.cfg.sync_group, []).append(lv.fsm)
        self.groups = {name: SyncGroup(name, m) for name, m in by_group.items()}

    # --- reload ---------------------------------------------------------------------

    async def reconfigure(self, instances: Sequence[VrrpInstanceConfig]) -> None:
        """Apply a new set of instances without disturbing unchanged ones.

        Same identity (name, interface, VRID, version, family, source, sync group):
        updated in place, a master keeps its role and swaps VIPs with a fresh GARP.
        Otherwise the old instance resigns (priority 0) and the new one starts.
        Must be called while `run` is running.
        """
        assert self.loop is not None
        wanted = {c.name: c for c in instances}
        for name, lv in list(self.live.items()):
            cfg = wanted.get(name)
            if cfg is None or _identity(cfg) != _identity(lv.cfg):
                self._retire(lv)
        fresh = []
        for name, cfg in wanted.items():
            lv = self.live.get(name)
            if lv is None:
                lv = self.live[name] = await self._open(cfg)
                fresh.append(lv)
            elif cfg != lv.cfg:
                self._update(lv, cfg)
            self._seed_tracked_vs(lv)
        self.configs = tuple(instances)
        self._close_unused_sockets()
        self._regroup()
        self._refresh_all_links()
        now = self._now()
        for lv in fresh:
            self._apply(lv, lv.fsm.start(now))

    def _close_unused_sockets(self) -> None:
        assert self.loop is not None
        for key, sock in list(self.sockets.items()):
            if not any(lv.sock is sock for lv in self.live.values()):
                self.loop.remove_reader(sock.fileno())
                sock.close()
                del self.sockets[key]

    def _retire(self, lv: _Live) -> None:
        self._apply(lv, lv.fsm.shutdown(self._now()), follow=False)
        self._cancel_timer(lv)
        self._cancel_garp(lv, refresh=True)
        lv.sender.close()
        del self.live[lv.cfg.name]

    def _update(self, lv: _Live, cfg: VrrpInstanceConfig) -> None:
        """Same virtual router, new parameters."""
        old, f, now = lv.cfg, lv.fsm, self._now()
        before = f.effective_priority
        lv.cfg = cfg
        f.priority, f.preempt, f.preempt_delay = cfg.priority, cfg.preempt, cfg.preempt_delay
        f.interval_cs = max(1, round(cfg.advert_interval * 100))
        keep = {f"iface:{cfg.interface}"}
        keep |= {f"track:{t.name}" for t in cfg.track_interfaces}
        keep |= {f"vs:{t.name}" for t in cfg.track_virtual_servers}
        for key in set(f.track_weights) - keep:
            del f.track_weights[key]
            f.failing.discard(key)
        if f.state is not State.MASTER:
            return
        gone = [v for v in old.virtual_ips if v not in cfg.virtual_ips]
        if gone:
            self._vips_change(lv, gone, add=False)
        if cfg.virtual_ips != old.virtual_ips:
            self._vips(lv, add=True)
            self._start_garp(lv)
        if f.effective_priority != before or cfg.virtual_ips != old.virtual_ips:
            self._send_advert(lv, f.effective_priority)
        f.adver_at = now + f.interval_cs / 100
        self._arm(lv)

    async def _open(self, cfg: VrrpInstanceConfig) -> _Live:
        assert self.addrs is not None and self.loop is not None
        link = self.addrs.link(cfg.interface)
        if link is None:
            raise OSError(f"vrrp_instance {cfg.name}: no interface {cfg.interface!r}")
        primary = cfg.unicast_src or await self._wait_primary(cfg, link.index)
        key = (cfg.interface, cfg.family)
        sock = self.sockets.get(key)
        if sock is None:
            sock = VrrpSocket(cfg.interface, link.index, cfg.family, not cfg.unicast_peers)
            self.sockets[key] = sock
            self.loop.add_reader(sock.fileno(), self._on_readable, sock)
        elif not cfg.unicast_peers:
            sock.join()  # shared with a unicast instance that did not join
        fsm = Instance(
            name=cfg.name,
            vrid=cfg.vrid,
            priority=cfg.priority,
            interval_cs=max(1, round(cfg.advert_interval * 100)),
            primary=primary,
            version=cfg.version,
            preempt=cfg.preempt,
            preempt_delay=cfg.preempt_delay,
        )
        log.info("vrrp instance ready", instance=cfg.name, interface=cfg.interface,
                 vrid=cfg.vrid, version=cfg.version, primary=str(primary))
        return _Live(cfg, fsm, Counters(), link.index, link.mac, primary, sock,
                     PacketSender(cfg.interface))

    async def _wait_primary(self, cfg: VrrpInstanceConfig, ifindex: int) -> IPAddress:
        """The interface's own address; IPv6 link-local may still be tentative."""
        assert self.addrs is not None
        vips = {v.ip for v in cfg.virtual_ips}
        deadline = time.monotonic() + PRIMARY_WAIT
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
            self._cancel_garp(lv, refresh=True)
            lv.sender.close()
        for sock in self.sockets.values():
            if self.loop:
                self.loop.remove_reader(sock.fileno())
            sock.close()
        if self.links is not None:
            if self.loop:
                self.loop.remove_reader(self.links.fileno())
            self.links.close()
        if self.addrs is not None:
            self.addrs.close()

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

    def _find(self, sock: VrrpSocket, data: bytes) -> _Live | None:
        if len(data) < 2:
            return None
        version, vrid = data[0] >> 4, data[1]
        for lv in self.live.values():
            if lv.sock is sock and lv.cfg.vrid == vrid and lv.cfg.version == version:
                return lv
        return None

    def _on_packet(self, sock: VrrpSocket, got: Received) -> None:
        lv = self._find(sock, got.data)
        errors = lv.counters.errors if lv else self.unmatched
        try:
            advert = codec.decode(
                got.data, src=got.src, dst=got.dst, ttl=got.ttl,
                accept_v2_checksum=bool(lv and lv.cfg.v3_checksum_as_v2),
            )
            if lv is None:
                raise codec.DecodeError(codec.Reason.WRONG_VRID, f"vrid {advert.vrid}")
            if got.src == lv.primary:
                raise codec.DecodeError(codec.Reason.OWN_PACKET)
            if lv.cfg.unicast_peers and got.src not in lv.cfg.unicast_peers:
                raise codec.DecodeError(codec.Reason.UNKNOWN_PEER, str(got.src))
            codec.check_instance(
                advert, vrid=lv.cfg.vrid, version=lv.cfg.version,
                interval_cs=lv.fsm.interval_cs,
            )
        except codec.DecodeError as exc:
            errors[exc.reason.value] += 1
            log.debug("vrrp packet dropped", reason=exc.reason.value, src=str(got.src),
                      detail=exc.detail)
            return
        lv.counters.adverts_received += 1
        if advert.version == 3 and advert.interval_cs != lv.fsm.interval_cs:
            lv.counters.interval_mismatch += 1
        if advert.priority == 0:
            log.info("peer resigned (priority 0)", instance=lv.cfg.name, src=str(got.src))
        elif lv.cfg.name in self._held:
            self._release_held(f"claimed by {got.src}", lv.cfg.name)
        arrived = got.arrived if got.arrived is not None else self._now()
        self._apply(lv, lv.fsm.receive(advert, got.src, arrived))

    def _on_timer(self, lv: _Live) -> None:
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
        names = {lv.cfg.interface for lv in self.live.values()}
        names |= {t.name for lv in self.live.values() for t in lv.cfg.track_interfaces}
        infos = {n: self.addrs.link(n) for n in names}
        now = self._now()
        for lv in self.live.values():
            self._apply_links(lv, infos, now)

    def _apply_links(self, lv: _Live, infos: dict[str, LinkInfo | None], now: float) -> None:
        own = infos.get(lv.cfg.interface)
        acts = lv.fsm.set_tracked(f"iface:{lv.cfg.interface}", 0, bool(own and own.up), now)
        if own is not None:
            lv.mac = own.mac
        for t in lv.cfg.track_interfaces:
            info = infos.get(t.name)
            acts += lv.fsm.set_tracked(f"track:{t.name}", t.weight, bool(info and info.up), now)
        self._apply(lv, acts)

    # --- actions out ----------------------------------------------------------------

    def _apply(self, lv: _Live, actions: list[Action], follow: bool = True) -> None:
        """Carry out an instance's actions, and its sync group's, phase by phase (`_run`)."""
        batch = [(lv, act) for act in actions]
        if follow and lv.cfg.sync_group in self.groups:
            extra = self.groups[lv.cfg.sync_group].follow(lv.fsm, actions, self._now())
            batch += [(self.live[name], act) for name, acts in extra.items() for act in acts]
        self._run(batch, also=lv)  # its deadline may have moved without any action

    def _run(self, batch: list[tuple[_Live, Action]], also: _Live | None = None) -> None:
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

    def _do(self, lv: _Live, act: Action) -> None:
        if isinstance(act, SendAdvert):
            self._send_advert(lv, act.priority)
        elif isinstance(act, AddVips):
            self._vips(lv, add=True)
        elif isinstance(act, RemoveVips):
            self._cancel_garp(lv, refresh=True)
            self._vips(lv, add=False)
        elif isinstance(act, SendGarp):
            self._start_garp(lv)

    def _send_advert(self, lv: _Live, priority: int) -> None:
        advert = codec.Advert(
            lv.cfg.version, lv.cfg.vrid, priority, lv.fsm.interval_cs,
            tuple(v.ip for v in lv.cfg.virtual_ips),
        )
        with self._send_lock:
            if lv.cfg.name in self._farewelled:
                return
            _send_all(lv.cfg.name, lv.sock, lv.primary, _encoded(lv, advert), lv.counters)
        if priority != SHUTDOWN_PRIORITY and lv.fsm.state is State.MASTER:
            self._ready_farewell(lv, dataclasses.replace(advert, priority=SHUTDOWN_PRIORITY))

    def _ready_farewell(self, lv: _Live, advert: codec.Advert) -> None:
        key = (advert, lv.primary, lv.dst, lv.cfg.v3_checksum_as_v2, id(lv.sock))
        current = self._farewells.get(lv.cfg.name)
        if current is not None and current.key == key:
            return
        farewell = _Farewell(key, lv.sock, lv.primary, _encoded(lv, advert), lv.counters)
        self._farewells = {**self._farewells, lv.cfg.name: farewell}

    def _drop_farewell(self, name: str) -> None:
        if name in self._farewells:
            self._farewells = {k: v for k, v in self._farewells.items() if k != name}

    def _vips(self, lv: _Live, add: bool) -> None:
        """All of the instance's VIPs, added or removed before this returns."""
        t0 = time.monotonic()
        self._vips_change(lv, lv.cfg.virtual_ips, add)
        log.debug("vips " + ("added" if add else "removed"), instance=lv.cfg.name,
                  ms=round((time.monotonic() - t0) * 1000, 2))

    def _vips_change(self, lv: _Live, vips: Sequence[Any], add: bool) -> None:
        assert self.addrs is not None
        for vip in vips:
            try:
                if add:
                    self.addrs.add(lv.ifindex, vip)
                else:
                    self.addrs.remove(lv.ifindex, vip)
            except Exception as exc:  # a netlink refusal must not kill the instance
                lv.counters.errors["vip_" + ("add" if add else "remove")] += 1
                log.error("vip change failed", instance=lv.cfg.name, vip=str(vip),
                          add=add, error=str(exc))

    def _garp_round(self, lv: _Live) -> None:
        src6 = lv.primary if lv.primary.version == 6 else None
        for frame in frames_for(lv.mac, [v.ip for v in lv.cfg.virtual_ips], src6):
            try:
                lv.sender.send(frame)
                lv.counters.garps_sent += 1
            except OSError:
                lv.counters.send_errors += 1

    def _start_garp(self, lv: _Live) -> None:
        """One round now (the VIPs were added synchronously just before), then the
        configured repeats; a new burst replaces a running one."""
        assert self.loop is not None
        self._cancel_garp(lv, refresh=False)
        self._garp_round(lv)
        lv.garp_task = self.loop.create_task(self._garp_burst(lv))
        if lv.cfg.garp.refresh > 0 and lv.refresh_task is None:
            lv.refresh_task = self.loop.create_task(self._garp_refresh(lv))

    async def _garp_burst(self, lv: _Live) -> None:
        for _ in range(max(0, lv.cfg.garp.repeat - 1)):
            await asyncio.sleep(lv.cfg.garp.interval)
            self._garp_round(lv)

    async def _garp_refresh(self, lv: _Live) -> None:
        while True:
            await asyncio.sleep(lv.cfg.garp.refresh)
            if lv.fsm.state is State.MASTER:
                self._garp_round(lv)

    def _cancel_garp(self, lv: _Live, refresh: bool) -> None:
        if lv.garp_task is not None:
            lv.garp_task.cancel()
            lv.garp_task = None
        if refresh and lv.refresh_task is not None:
            lv.refresh_task.cancel()
            lv.refresh_task = None

    def _transition(self, lv: _Live, tr: Transition) -> None:
        if tr.new is not State.MASTER:
            self._drop_farewell(lv.cfg.name)
        lv.counters.transitions += 1
        lv.state_since_wall = time.time()
        log.info("vrrp transition", instance=lv.cfg.name, old=tr.old.value, new=tr.new.value,
                 priority=tr.priority, reason=tr.reason)
        if lv.cfg.notify and self.loop is not None and self.loop.is_running():
            task = self.loop.create_task(self._notify_after(lv.notify_task, lv, tr))
            lv.notify_task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.on_transition is not None:
            try:
                self.on_transition(lv.cfg.name, tr)
            except Exception:
                log.exception("on_transition hook failed", instance=lv.cfg.name)

    @staticmethod
    async def _notify_after(prev: asyncio.Task | None, lv: _Live, tr: Transition) -> None:
        """Hooks of one instance run one at a time, in transition order (each is
        time-bounded), so an external system never sees master after backup."""
        if prev is not None:
            with contextlib.suppress(Exception):
                await prev
        await run_notify(lv.cfg.notify, lv.cfg.name, tr.new.value, tr.priority)

    def _arm(self, lv: _Live) -> None:
        """Point the instance's single timer at the FSM's next deadline."""
        assert self.loop is not None
        self._cancel_timer(lv)
        deadline = lv.fsm.deadline
        if deadline is not None:
            lv.timer = self.loop.call_at(deadline, self._on_timer, lv)

    @staticmethod
    def _cancel_timer(lv: _Live) -> None:
        if lv.timer is not None:
            lv.timer.cancel()
            lv.timer = None


def _encoded(lv: _Live, advert: codec.Advert) -> tuple[tuple[bytes, IPAddress], ...]:
    """The advert as the instance sends it to each destination (payload, destination)."""
    return tuple((codec.encode(advert, lv.primary, dst, checksum_as_v2=lv.cfg.v3_checksum_as_v2), dst)
                 for dst in lv.dst)


def _send_all(name: str, sock: VrrpSocket, src: IPAddress, packets: tuple[tuple[bytes, IPAddress], ...],
              counters: Counters) -> None:
    for payload, dst in packets:
        try:
            sock.send(payload, src, dst)
            counters.adverts_sent += 1
        except OSError as exc:
            counters.send_errors += 1
            log.debug("advert send failed", instance=name, error=str(exc))


def _identity(cfg: VrrpInstanceConfig) -> tuple:
    return (cfg.interface, cfg.vrid, cfg.version, cfg.family, cfg.unicast_src, cfg.sync_group)


async def run_vrrp(
    instances: Sequence[VrrpInstanceConfig],
    stop: asyncio.Event,
    on_transition: TransitionHook | None = None,
) -> None:
    """Run the given instances until `stop` is set (then shut down gracefully)."""
    await VrrpRuntime(instances, on_transition).run(stop)
