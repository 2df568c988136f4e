"""The IPVS table directord wants, computed from config and real-server state.

Pure: config, per-real-server state and the time in; desired services out.
Health, admin drain, slow start and the sorry server all meet here, so the
reconciler only ever compares two tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from director.config.model import Config, RealServerConfig, VirtualServerConfig
from director.ipvs.model import (
    NO_TUNNEL,
    SCHED_FLAG_BITS,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    DestKey,
    DestSpec,
    ServiceKey,
    ServiceSpec,
)


@dataclass(frozen=True, slots=True)
class RealServerState:
    """What the director knows about one real server beyond its config."""

    up: bool = True
    up_since: float | None = None  # when it last came up; drives slow start
    admin_drained: bool = False
    dynamic_weight: int | None = None  # from an exec check's exit code


@dataclass(slots=True)
class DesiredService:
    name: str
    spec: ServiceSpec
    dests: dict[DestKey, DestSpec] = field(default_factory=dict)
    # Configured real servers that must leave the table now (on_failure = remove):
    # deleted at once instead of drained.
    evict: set[DestKey] = field(default_factory=set)
    quorum_lost: bool = False


DesiredTable = dict[ServiceKey, DesiredService]
StateKey = tuple[str, DestKey]  # (virtual server name, real server)


def service_key(vs: VirtualServerConfig) -> ServiceKey:
    if vs.fwmark:
        return ServiceKey(vs.family, "", "", 0, vs.fwmark)
    return ServiceKey(vs.family, vs.protocol, str(vs.address), vs.port)


def dest_key(rs: RealServerConfig) -> DestKey:
    return DestKey(rs.address.version, str(rs.address), rs.port)


def service_spec(vs: VirtualServerConfig) -> ServiceSpec:
    flags = 0
    if vs.persistence_timeout:
        flags |= SVC_F_PERSISTENT
    if vs.one_packet:
        flags |= SVC_F_ONEPACKET
    for name in vs.scheduler_flags:
        flags |= SCHED_FLAG_BITS[name]
    host_prefix = 32 if vs.family == 4 else 128
    return ServiceSpec(
        key=service_key(vs),
        scheduler=vs.scheduler,
        flags=flags,
        timeout=int(vs.persistence_timeout),
        netmask=vs.persistence_netmask if vs.persistence_netmask is not None else host_prefix,
    )


def dest_spec(vs: VirtualServerConfig, rs: RealServerConfig, weight: int) -> DestSpec:
    method = rs.method or vs.method
    tunnel = {name: getattr(rs, name) for name in NO_TUNNEL} if method == "tun" else NO_TUNNEL
    return DestSpec(
        key=dest_key(rs),
        method=method,
        weight=weight,
        upper_threshold=rs.upper_threshold,
        lower_threshold=rs.lower_threshold,
        **tunnel,
    )


def effective_weight(vs: VirtualServerConfig, rs: RealServerConfig, state: RealServerState,
                     now: float) -> int | None:
    """The weight to program, or None when the real server must not be in the table."""
    if state.admin_drained:
        return 0
    if not state.up:
        return None if vs.on_failure == "remove" else 0
    weight = state.dynamic_weight if state.dynamic_weight is not None else rs.weight
    if vs.slow_start and state.up_since is not None and weight > 0:
        elapsed = now - state.up_since
        if 0 <= elapsed < vs.slow_start:
            return max(1, math.ceil(weight * elapsed / vs.slow_start))
    return weight


def quorum_lost(vs: VirtualServerConfig, healthy_weight: int, was_lost: bool | None) -> bool:
    """Below quorum; with `hysteresis`, lost only under quorum - hysteresis and regained only at
    quorum + hysteresis, so a pool on the edge does not flap (keepalived's rule). `was_lost`:
    the last verdict (None: none yet, the plain rule)."""
    if not vs.hysteresis or was_lost is None:
        return healthy_weight < vs.quorum
    if was_lost:
        return healthy_weight < vs.quorum + vs.hysteresis
    return healthy_weight < vs.quorum - vs.hysteresis


def desired_service(vs: VirtualServerConfig, states: Mapping[StateKey, RealServerState],
                    now: float, was_lost: bool | None = None) -> DesiredService:
    desired = DesiredService(name=vs.name, spec=service_spec(vs))
    healthy_weight = 0
    for rs in vs.real_servers:
        key = dest_key(rs)
        state = states.get((vs.name, key), RealServerState())
        weight = effective_weight(vs, rs, state, now)
        if weight is None:
            desired.evict.add(key)
            continue
        desired.dests[key] = dest_spec(vs, rs, weight)
        if state.up and not state.admin_drained:
            healthy_weight += state.dynamic_weight if state.dynamic_weight is not None else rs.weight
    desired.quorum_lost = quorum_lost(vs, healthy_weight, was_lost)
    sorry = vs.sorry_server
    if sorry is not None and desired.quorum_lost:
        sorry_key = dest_key(sorry)
        if sorry_key not in desired.dests:
            desired.dests[sorry_key] = dest_spec(vs, sorry, max(sorry.weight, 1))
        desired.evict.discard(sorry_key)
    elif sorry is not None and dest_key(sorry) not in desired.dests:
        # Back above quorum: the sorry server leaves at once, it holds no sessions worth draining.
        desired.evict.add(dest_key(sorry))
    return desired


def desired_table(config: Config, states: Mapping[StateKey, RealServerState] | None = None,
                  now: float = 0.0) -> DesiredTable:
    states = states or {}
    table: DesiredTable = {}
    for vs in config.virtual_servers:
        desired = desired_service(vs, states, now)
        table[desired.spec.key] = desired
    return table
