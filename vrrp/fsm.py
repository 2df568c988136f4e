"""The VRRP state machine of RFC 5798 section 6 (RFC 3768 for v2), sans-IO.

An `Instance` is a plain object: every method takes the event and the time
(`now`, monotonic seconds) and returns the actions the I/O edge must carry
out. The edge asks `deadline` when to call `tick` next. Nothing here sleeps,
opens a socket or reads a clock, so every RFC rule is a fast unit test.

Beyond the RFC: a Fault state for tracked failures, tracked objects that
shift the effective priority by a weight, preempt_delay, a graceful
`give_up`, and `SyncGroup` that moves several instances together.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from vrrp.codec import Advert

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Vip = ipaddress.IPv4Interface | ipaddress.IPv6Interface

OWNER_PRIORITY = 255
SHUTDOWN_PRIORITY = 0
RIVAL_GARP_GAP = 1.0  # seconds between GARP bursts provoked by a rival master


class State(enum.Enum):
    INIT = "init"
    BACKUP = "backup"
    MASTER = "master"
    FAULT = "fault"


@dataclass(frozen=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True)
class AddVips:
    pass


@dataclass(frozen=True)
class RemoveVips:
    pass


@dataclass(frozen=True)
class DropVips:
    """Remove just these VIPs: a reload took them out of the config. The rest stay,
    and so does the announcement schedule."""

    vips: tuple[Vip, ...]


@dataclass(frozen=True)
class SendGarp:
    """Announce the VIPs' new home: gratuitous ARP / unsolicited NA. `lower_prio`: to
    outshout a rival master of lower priority, with its own repeat and delay."""

    lower_prio: bool = False


@dataclass(frozen=True)
class Transition:
    old: State
    new: State
    priority: int
    reason: str


Action = SendAdvert | AddVips | RemoveVips | DropVips | SendGarp | Transition


@dataclass(frozen=True)
class Params:
    """What a reload may change in a running virtual router; its identity (name,
    VRID, version, interface, primary address) stays."""

    priority: int
    interval_cs: int
    preempt: bool = True
    preempt_delay: float = 0.0
    vips: tuple[Vip, ...] = ()
    # Tracked objects the config still names; any other stops counting.
    track_keys: frozenset[str] = frozenset()


@dataclass
class Instance:
    """One virtual router's state machine.

    `interval_cs` is the configured Advertisement_Interval in centiseconds.
    `primary` is our own primary address, compared on equal priority.
    """

    name: str
    vrid: int
    priority: int
    interval_cs: int
    primary: IPAddress
    version: int = 3
    preempt: bool = True
    preempt_delay: float = 0.0
    vips: tuple[Vip, ...] = ()  # only compared on reload: the edge owns the addresses
    state: State = State.INIT
    master_adver_cs: int = 0
    master_down_at: float | None = None
    adver_at: float | None = None
    preempt_at: float | None = None
    preempt_ready: bool = False
    # Tracked objects: key -> weight; failing keys.
    track_weights: dict[str, int] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    group_fault: bool = False
    hold_preempt: bool = False
    master_address: IPAddress | None = None
    state_since: float = 0.0
    # Sync group: may this member become master now? Set by SyncGroup.
    gate: Callable[[Instance], bool] | None = field(default=None, repr=False)
    wants_master: bool = False  # down timer expired, waiting for the group
    rival_garp_at: float | None = None
    rival_seen_at: float | None = None
    # The master's last out-of-turn advert (the answer to a priority 0 or a lower rival):
    # at most one per half Advertisement_Interval, so a real rival advertising at our
    # rate is always answered and a flood of forged packets is not reflected one for one.
    answered_at: float | None = None
    answers_suppressed: int = 0
    # Another router last heard on this VRID (backups are silent, so a master knows of a
    # backup only if it heard it at some point): `failover` refuses without one.
    peer_heard: IPAddress | None = None

    # --- derived values (RFC 5798 6.1) -----------------------------------------

    @property
    def effective_priority(self) -> int:
        """Base priority shifted by failing tracked objects' weights.

        An address owner (255) is never shifted; others stay within 1..254
        so tracking can never forge ownership or a shutdown advert.
        """
        if self.priority == OWNER_PRIORITY:
            return OWNER_PRIORITY
        shift = sum(self.track_weights.get(k, 0) for k in self.failing)
        return max(1, min(254, self.priority + shift))

    @property
    def in_fault(self) -> bool:
        own = any(self.track_weights.get(k, 0) == 0 for k in self.failing)
        return own or self.group_fault

    def skew_time(self) -> float:
        """Skew_Time in seconds: v3 scales with Master_Adver_Interval, v2 does not."""
        prio = self.effective_priority
        if self.version == 2:
            return (256 - prio) / 256
        return ((256 - prio) * self.master_adver_cs) / 256 / 100

    def master_down_interval(self) -> float:
        """Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time, in seconds."""
        return 3 * self.master_adver_cs / 100 + self.skew_time()

    @property
    def deadline(self) -> float | None:
        """The earliest time `tick` must be called; None when idle."""
        times = [
            t for t in (self.master_down_at, self.adver_at, self.preempt_at) if t is not None
        ]
        return min(times) if times else None

    # --- events -----------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Startup event (RFC 5798 6.4.1)."""
        if self.state is not State.INIT:
            return []
        if self.in_fault:
            return self._to(State.FAULT, now, "fault at startup")
        self.master_adver_cs = self.interval_cs
        if self.priority == OWNER_PRIORITY:
            return self._become_master(now, "address owner")
        self.master_down_at = now + self.master_down_interval()
        return self._to(State.BACKUP, now, "startup")

    def shutdown(self, now: float) -> list[Action]:
        """Shutdown event: a master sends priority 0 so a backup takes over fast.
        An instance already down (initial state) has nothing to do."""
        if self.state is State.INIT:
            return []
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions += [SendAdvert(SHUTDOWN_PRIORITY), RemoveVips()]
        self._cancel_timers()
        return actions + self._to(State.INIT, now, "shutdown")

    def tick(self, now: float) -> list[Action]:
        """Fire whichever timers are due."""
        actions: list[Action] = []
        if self.preempt_at is not None and now >= self.preempt_at:
            self.preempt_at = None  # delay over: lower adverts are now discarded
            self.preempt_ready = True
        down = self.master_down_at
        if self.state is State.BACKUP and down is not None and now >= down:
            self.hold_preempt = False
            if self.gate is not None and not self.gate(self):
                # Siblings still hear their master: wait for the whole group.
                self.master_down_at, self.wants_master = None, True
                return actions
            actions += self._become_master(now, "master down timer")
        elif self.state is State.MASTER and self.adver_at is not None and now >= self.adver_at:
            self.adver_at = now + self.interval_cs / 100
            actions.append(SendAdvert(self.effective_priority))
        return actions

    def receive(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        """An advertisement that passed the codec's and instance's checks."""
        self.peer_heard = src
        if self.state is State.BACKUP:
            return self._backup_receive(advert, src, now)
        if self.state is State.MASTER:
            return self._master_receive(advert, src, now)
        return []

    def _backup_receive(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        """RFC 5798 6.4.2, plus preempt_delay and a held give-up."""
        if advert.priority == SHUTDOWN_PRIORITY:
            self.master_down_at, self.wants_master = now + self.skew_time(), False
            return []
        mine = self.effective_priority
        yield_to = (
            not self.preempt
            or self.hold_preempt
            or advert.priority > mine
            or (advert.priority == mine and _addr_gt(src, self.primary))
        )
        if not yield_to and self.preempt_delay > 0 and not self.preempt_ready:
            if self.preempt_at is None:
                self.preempt_at = now + self.preempt_delay
            yield_to = True  # keep following the lower master until the delay ends
        elif yield_to:
            self.preempt_at, self.preempt_ready = None, False
        if not yield_to:
            return []  # preempt: let Master_Down_Timer expire
        self.master_address, self.wants_master = src, False
        if self.version == 3:
            self.master_adver_cs = advert.interval_cs or self.interval_cs
        self.master_down_at = now + self.master_down_interval()
        return []

    def _master_receive(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        """RFC 5798 6.4.3; a losing rival also gets an immediate advert and GARP.

        A lower advert reaching a master means another router thought it was master.
        """
        mine = self.effective_priority
        if advert.priority == SHUTDOWN_PRIORITY:
            if not self._may_answer(now):
                return []
            self.adver_at = now + self.interval_cs / 100
            return [SendAdvert(mine)]
        if advert.priority > mine or (advert.priority == mine and _addr_gt(src, self.primary)):
            self.adver_at = None
            self.master_address = src
            if self.version == 3:
                self.master_adver_cs = advert.interval_cs or self.interval_cs
            self.master_down_at = now + self.master_down_interval()
            # A last advert tells the winner a rival master existed (split brain
            # healing), so it re-announces the VIPs even if it never heard us.
            return [
                SendAdvert(mine),
                RemoveVips(),
                *self._to(State.BACKUP, now, f"higher priority {src}"),
            ]
        # Another router believes it is master (split brain healing): assert
        # ourselves at once and re-point neighbours to us. A rival that cannot
        # hear us would trigger this on every advert, so within one episode
        # (adverts less than 3 intervals apart) GARP at most once a second.
        last_seen, self.rival_seen_at = self.rival_seen_at, now
        if not self._may_answer(now):
            return []
        self.adver_at = now + self.interval_cs / 100
        new_episode = last_seen is None or now - last_seen > 3 * self.interval_cs / 100
        recent_garp = self.rival_garp_at is not None and now - self.rival_garp_at < RIVAL_GARP_GAP
        if recent_garp and not new_episode:
            return [SendAdvert(mine)]
        self.rival_garp_at = now
        return [SendAdvert(mine), SendGarp(lower_prio=True)]

    def _may_answer(self, now: float) -> bool:
        """Whether an out-of-turn advert may go now (counting the ones held back); the
        regular advert still follows on the Adver_Timer."""
        if self.answered_at is not None and now - self.answered_at < self.interval_cs / 200:
            self.answers_suppressed += 1
            return False
        self.answered_at = now
        return True

    def give_up(self, now: float) -> list[Action]:
        """Graceful failover on request: priority 0, then stay backup.

        The hold keeps a preempting higher-priority node from taking the
        role straight back; it lifts when the new master disappears.
        """
        if self.state is not State.MASTER:
            return []
        self.hold_preempt = True
        self.adver_at = None
        self.master_adver_cs = self.interval_cs
        self.master_down_at = now + self.master_down_interval()
        return [
            SendAdvert(SHUTDOWN_PRIORITY),
            RemoveVips(),
            *self._to(State.BACKUP, now, "give up requested"),
        ]

    def reconfigure(self, params: Params, now: float) -> list[Action]:
        """A reload changed this virtual router's parameters.

        Tracked objects the config dropped stop counting. A master keeps its role and
        makes the change visible at once (see `_master_reconfigured`); other states
        just take the new values and their timers run on.
        """
        before, old_vips = self.effective_priority, self.vips
        self.priority, self.interval_cs = params.priority, params.interval_cs
        self.preempt, self.preempt_delay = params.preempt, params.preempt_delay
        self.vips = params.vips
        for key in set(self.track_weights) - params.track_keys:
            del self.track_weights[key]
            self.failing.discard(key)
        if self.state is not State.MASTER:
            return []
        return self._master_reconfigured(before, old_vips, now)

    def _master_reconfigured(self, before: int, old_vips: tuple[Vip, ...], now: float) -> list[Action]:
        """Drop the VIPs that left, add and announce the new set, tell the peers when
        the priority or the VIPs changed, and restart the advert timer at the new
        interval. The actions are in the order the edge carries them out."""
        actions: list[Action] = []
        gone = tuple(v for v in old_vips if v not in self.vips)
        if gone:
            actions.append(DropVips(gone))
        moved = self.vips != old_vips
        if moved:
            actions += [AddVips(), SendGarp()]
        if moved or self.effective_priority != before:
            actions.append(SendAdvert(self.effective_priority))
        self.adver_at = now + self.interval_cs / 100
        return actions

    def set_tracked(self, key: str, weight: int, ok: bool, now: float) -> list[Action]:
        """A tracked object changed; weight 0 means Fault while it fails."""
        before = self.effective_priority
        self.track_weights[key] = weight
        if ok:
            self.failing.discard(key)
        else:
            self.failing.add(key)
        return self._reassess(now, before)

    def set_group_fault(self, fault: bool, now: float) -> list[Action]:
        self.group_fault = fault
        return self._reassess(now, self.effective_priority)

    def force(self, state: State, now: float) -> list[Action]:
        """Follow a sync-group sibling into MASTER or BACKUP."""
        if state is State.MASTER and self.state is State.BACKUP:
            return self._become_master(now, "sync group")
        if state is State.BACKUP and self.state is State.MASTER:
            self.adver_at = None
            self.master_adver_cs = self.interval_cs
            self.master_down_at = now + self.master_down_interval()
            return [RemoveVips(), *self._to(State.BACKUP, now, "sync group")]
        return []

    # --- helpers ----------------------------------------------------------------

    def _reassess(self, now: float, before: int) -> list[Action]:
        if self.state is State.INIT:
            return []
        if self.in_fault and self.state is not State.FAULT:
            actions: list[Action] = []
            if self.state is State.MASTER:
                actions += [SendAdvert(SHUTDOWN_PRIORITY), RemoveVips()]
            self._cancel_timers()
            return actions + self._to(State.FAULT, now, "tracked failure")
        if not self.in_fault and self.state is State.FAULT:
            self.state = State.INIT
            return self.start(now)
        if self.state is State.MASTER and self.effective_priority != before:
            return [SendAdvert(self.effective_priority)]  # tell peers the new priority
        return []

    def _become_master(self, now: float, reason: str) -> list[Action]:
        self.master_down_at = None
        self.preempt_at, self.preempt_ready = None, False
        self.adver_at = now + self.interval_cs / 100
        self.master_address = self.primary
        return [
            SendAdvert(self.effective_priority),
            AddVips(),
            SendGarp(),
            *self._to(State.MASTER, now, reason),
        ]

    def _cancel_timers(self) -> None:
        self.master_down_at = self.adver_at = self.preempt_at = None
        self.preempt_ready = False

    def _to(self, new: State, now: float, reason: str) -> list[Action]:
        old, self.state = self.state, new
        self.state_since, self.wants_master = now, False
        if new is not State.BACKUP:
            self.master_address = self.primary if new is State.MASTER else None
        return [Transition(old, new, self.effective_priority, reason)]


def _addr_gt(a: IPAddress, b: IPAddress) -> bool:
    """RFC 5798 6.4.3: compare primary addresses as unsigned integers."""
    return int(a) > int(b)


class SyncGroup:
    """Instances that change state together (one VIP set spread over VRIDs).

    The group watches each member's transitions and drags the others along:
    one in Fault puts all in Fault, one becoming Master or Backup moves the rest,
    and a member goes Master on its own timer only when all its siblings would.
    """

    def __init__(self, name: str, members: list[Instance]) -> None:
        self.name = name
        self.members = members
        for m in members:
            m.gate = self.can_go_master

    def can_go_master(self, member: Instance) -> bool:
        """Only when every sibling is master or has lost its master too; otherwise
        a member whose peer has a different priority would drag the group to and fro.

        A sibling whose own down timer is due within one advert interval counts as
        lost: a dead master's instances fall silent together, but their last adverts
        are up to an interval apart, and waiting for the last one would delay the
        whole group's takeover by that much. A sibling that still hears its master
        is two intervals or more from its deadline."""
        now = member.master_down_at
        return all(
            s is member or s.state is State.MASTER or s.wants_master or _silent(s, now)
            for s in self.members
        )

    def follow(self, source: Instance, actions: list[Action], now: float) -> dict[str, list]:
        """Given `source`'s actions, return the extra actions for each sibling."""
        extra: dict[str, list[Action]] = {}
        own_fault = any(_own_fault(m) for m in self.members)
        for m in self.members:
            if m is source:
                continue
            acts = m.set_group_fault(own_fault and not _own_fault(m), now)
            for a in actions:
                if isinstance(a, Transition) and a.new in (State.MASTER, State.BACKUP):
                    acts += m.force(a.new, now)
            if acts:
                extra[m.name] = acts
        return extra


def _silent(m: Instance, now: float | None) -> bool:
    """Its master has missed all but (at most) the last advert the down timer allows."""
    due = m.master_down_at
    return (m.state is State.BACKUP and now is not None and due is not None
            and due - now <= m.master_adver_cs / 100)


def _own_fault(m: Instance) -> bool:
    return any(m.track_weights.get(k, 0) == 0 for k in m.failing)
