"""One running instance: its config, the state machine built from it, and the I/O
parts the runtime drives for it (socket route, announcer, timer, counters)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vrrp import ah, codec, tracking
from vrrp.adverts import Route
from vrrp.carried import items_of
from vrrp.counters import Counters
from vrrp.fsm import Instance, Params, State
from vrrp.garp import Announcer, frames_for
from vrrp.sockets import VrrpSocket

if TYPE_CHECKING:
    from director.config.model import GarpConfig, VirtualAddress, VrrpInstanceConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# auth_type in the config -> the v2 Auth Type on the wire
AUTH_TYPES = {None: codec.AUTH_NONE, "pass": codec.AUTH_PASS, "ah": codec.AUTH_AH}


def params_of(cfg: VrrpInstanceConfig) -> Params:
    """The state machine's view of what a reload may change."""
    return Params(
        priority=cfg.priority,
        interval_cs=max(1, round(cfg.advert_interval * 100)),
        preempt=cfg.preempt,
        preempt_delay=cfg.preempt_delay,
        vips=items_of(cfg),
        track_keys=tracking.keys(cfg),
    )


def new_instance(cfg: VrrpInstanceConfig, primary: IPAddress) -> Instance:
    p = params_of(cfg)
    return Instance(name=cfg.name, vrid=cfg.vrid, priority=p.priority, interval_cs=p.interval_cs,
                    primary=primary, version=cfg.version, preempt=p.preempt,
                    preempt_delay=p.preempt_delay, vips=p.vips)


@dataclass(eq=False)  # compared and hashed by identity: the hand-over keys on it
class Live:
    """One instance's runtime state next to its pure state machine."""

    cfg: VrrpInstanceConfig
    fsm: Instance
    ifindex: int
    mac: bytes
    primary: IPAddress
    sock: VrrpSocket
    announcer: Announcer
    counters: Counters = field(default_factory=Counters)
    timer: asyncio.TimerHandle | None = None
    notify_task: asyncio.Task | None = None
    state_since_wall: float = field(default_factory=time.time)
    session: ah.Session | None = None  # auth_type "ah": its sequence numbers, kept across reloads
    # device -> (MAC, IPv6 link-local or None) for the addresses carried on other devices
    devices: dict[str, tuple[bytes, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def route(self) -> Route:
        if self.cfg.unicast_peers:
            dsts = tuple(self.cfg.unicast_peers)
        else:
            dsts = (codec.MCAST_V4 if self.cfg.family == 4 else codec.MCAST_V6,)
        auth_type, auth_data = self.auth
        return Route(self.sock, self.primary, dsts, self.cfg.v3_checksum_as_v2, auth_type, auth_data, self.session,
                     self.cfg.unicast_ttl)

    @property
    def auth(self) -> tuple[int, bytes]:
        """The v2 Auth Type and the 8 bytes keepalived calls auth_data (password or AH key)."""
        return AUTH_TYPES[self.cfg.auth_type], codec.v2_auth_data(self.cfg.auth_pass or "")

    def advert(self, priority: int) -> codec.Advert:
        return codec.Advert(self.cfg.version, self.cfg.vrid, priority, self.fsm.interval_cs,
                            tuple(v.ip for v in self.cfg.virtual_ips))

    # --- what `garp.Announcer` reads each round -----------------------------------

    @property
    def garp(self) -> GarpConfig:
        return self.cfg.garp

    @property
    def is_master(self) -> bool:
        return self.fsm.state is State.MASTER

    def garp_frames(self) -> list[bytes]:
        """A round for the carried addresses of the instance's family on its interface."""
        src6 = self.primary if self.primary.version == 6 else None
        here = [a.address.ip for a in self.cfg.carried_addresses if not self._elsewhere(a)]
        return frames_for(self.mac, here, src6)

    def device_frames(self) -> list[tuple[str, bytes]]:
        """The rest, as keepalived sends them: each address from its own device's MAC, an IPv6
        one from that device's link-local address (`devices`, read on becoming master)."""
        frames = []
        for entry in filter(self._elsewhere, self.cfg.carried_addresses):
            dev = entry.dev or self.cfg.address_interface
            if dev in self.devices:
                mac, link_local = self.devices[dev]
                frames += [(dev, frame) for frame in frames_for(mac, [entry.address.ip], link_local)]
        return frames

    def other_devices(self) -> set[str]:
        """The devices `device_frames` needs to know."""
        carried = self.cfg.carried_addresses
        return {entry.dev or self.cfg.address_interface for entry in filter(self._elsewhere, carried)}

    def _elsewhere(self, entry: VirtualAddress) -> bool:
        """On another device than the instance's, or of the other family than its adverts."""
        return entry.dev not in ("", self.cfg.address_interface) or entry.address.version != self.primary.version

    # --- status ----------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """Plain data for status output and metrics."""
        c, f = self.counters, self.fsm
        return {
            "state": f.state.value,
            "priority": f.priority,
            "effective_priority": f.effective_priority,
            "master_address": str(f.master_address) if f.master_address else None,
            "peer_heard": str(f.peer_heard) if f.peer_heard else None,
            "holding_back": f.hold_preempt,  # after a failover: no preempting until the new master goes
            "state_since": self.state_since_wall,
            "interface": self.cfg.interface,
            "vrid": self.cfg.vrid,
            "virtual_ips": [str(vip) for vip in self.cfg.virtual_ips],
            # what else moves with mastership
            "vmac": self.cfg.vmac_name or None,
            "excluded_ips": [str(ip) for ip in self.cfg.excluded_ips],
            "virtual_routes": len(self.cfg.virtual_routes),
            "virtual_rules": len(self.cfg.virtual_rules),
            "version": self.cfg.version,
            "adverts_sent": c.adverts_sent,
            "adverts_received": c.adverts_received,
            "garps_sent": c.garps_sent,
            "transitions": c.transitions,
            "send_errors": c.send_errors,
            "interval_mismatch": c.interval_mismatch,
            "answers_suppressed": self.fsm.answers_suppressed,
            "errors": dict(c.errors),
        }
