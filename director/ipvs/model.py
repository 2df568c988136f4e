"""The IPVS table as plain values, and the seam the director talks to the kernel through.

The reconciler works only with these types. `director.ipvs.kernel` is the real
kernel implementation (generic netlink); `director.ipvs.memory` is an in-memory
one for fast logic tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Literal, Protocol

from director.config.model import SCHEDULER_FLAGS, TunnelChecksum, TunnelType
from director.config.model import Method as ConfigMethod

# The forwarding methods a dest may have: the configurable ones and two the kernel sets itself.
Method = Literal[ConfigMethod, "local", "bypass"]

# IPVS service flags (include/uapi/linux/ip_vs.h).
SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002  # set by the kernel, never by us
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008
SVC_F_SCHED2 = 0x0010
SVC_F_SCHED3 = 0x0020
# The flags directord manages; anything else the kernel reports is left alone.
SVC_F_MANAGED = SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3

SVC_F_SCHED_SLOTS = {1: SVC_F_SCHED1, 2: SVC_F_SCHED2, 3: SVC_F_SCHED3}
# Scheduler flag name -> the bit it sets; the names and slots are the config model's.
SCHED_FLAG_BITS = {name: SVC_F_SCHED_SLOTS[flag.slot] for name, flag in SCHEDULER_FLAGS.items()}


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """What identifies a virtual service to the kernel.

    Address services are keyed by (family, protocol, address, port); fwmark
    services by (family, fwmark) alone, so protocol/address/port are empty then.
    """

    family: int  # 4 or 6
    protocol: str  # "tcp" | "udp" | "sctp"; "" for fwmark services
    address: str  # canonical text form; "" for fwmark services
    port: int
    fwmark: int = 0

    def __str__(self) -> str:
        if self.fwmark:
            return f"fwmark {self.fwmark}" + (" (ipv6)" if self.family == 6 else "")
        host = f"[{self.address}]" if self.family == 6 else self.address
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True, slots=True, order=True)
class DestKey:
    family: int
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.family == 6 else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """The programmable attributes of a virtual service."""

    key: ServiceKey
    scheduler: str = "wlc"
    flags: int = 0  # SVC_F_* bits within SVC_F_MANAGED
    timeout: int = 0  # persistence, seconds
    netmask: int = 32  # persistence granularity as a prefix length
    pe_name: str = ""  # persistence engine ("sip") or ""


@dataclass(frozen=True, slots=True)
class DestSpec:
    """The programmable attributes of a real server within a service."""

    key: DestKey
    method: Method = "nat"
    weight: int = 1
    upper_threshold: int = 0
    lower_threshold: int = 0
    tunnel_type: TunnelType = "ipip"
    tunnel_port: int = 0
    tunnel_checksum: TunnelChecksum = "nocsum"


# The tunnel attributes of a dest that does not tunnel (what the kernel keeps for it).
NO_TUNNEL = {spec.name: spec.default for spec in fields(DestSpec) if spec.name.startswith("tunnel_")}


@dataclass(slots=True)
class Stats:
    connections: int = 0
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    cps: int = 0
    pps_in: int = 0
    pps_out: int = 0
    bps_in: int = 0
    bps_out: int = 0


@dataclass(slots=True)
class KernelDest:
    spec: DestSpec
    active_conns: int = 0
    inactive_conns: int = 0
    persistent_conns: int = 0
    stats: Stats = field(default_factory=Stats)


@dataclass(slots=True)
class KernelService:
    spec: ServiceSpec
    dests: dict[DestKey, KernelDest] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)


KernelTable = dict[ServiceKey, KernelService]


# --- operations -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddService:
    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class EditService:
    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class DeleteService:
    key: ServiceKey


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    spec: DestSpec


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    spec: DestSpec


@dataclass(frozen=True, slots=True)
class DeleteDest:
    service: ServiceKey
    key: DestKey


Op = AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest


def service_of(op: Op) -> ServiceKey:
    """The service an operation writes to."""
    if isinstance(op, AddService | EditService):
        return op.spec.key
    if isinstance(op, DeleteService):
        return op.key
    return op.service


def stored_service(spec: ServiceSpec) -> ServiceSpec:
    """The service as the kernel keeps it: only the flag bits directord manages."""
    return replace(spec, flags=spec.flags & SVC_F_MANAGED)


def stored_dest(spec: DestSpec) -> DestSpec:
    """The destination as the kernel keeps it: tunnel settings only for the tun method."""
    return spec if spec.method == "tun" else replace(spec, **NO_TUNNEL)


@dataclass(frozen=True, slots=True)
class OpError:
    op: Op
    errno: int
    message: str


@dataclass(frozen=True, slots=True)
class Timeouts:
    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0


# A backup thread reads each sync packet into a buffer of its max_packet_size (the kernel clamps
# it to 1024..65535 minus the IP and UDP headers) and drops a packet that does not fit. Asking for
# the most lets it take whatever size its peer sends, keepalived's MTU-sized packets included.
SYNC_RECEIVE_ANY_SIZE = 65535


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    state: Literal["master", "backup"]
    interface: str
    syncid: int = 0
    max_packet_size: int = 0
    mcast_group: str = ""  # "" : the kernel default 224.0.0.81
    mcast_port: int = 0  # 0 : the kernel default 8848
    mcast_ttl: int = 0  # 0 : the kernel default 1


class IpvsUnavailable(RuntimeError):
    """The running kernel has no IPVS (ip_vs not built or not loaded)."""


class IpvsBackend(Protocol):
    """The kernel boundary. Every method is synchronous and bounded in time."""

    def dump(self) -> KernelTable: ...

    def dump_services(self, keys: Iterable[ServiceKey]) -> tuple[KernelTable, dict[ServiceKey, str]]:
        """Just these services (those the kernel has), and why any could not be read:
        a targeted re-read or an audit slice costs what it reads."""
        ...

    def execute(self, ops: list[Op]) -> list[OpError]:
        """Apply ops in order; failures are returned per op, the rest still applied."""
        ...

    def get_timeouts(self) -> Timeouts: ...

    def set_timeouts(self, timeouts: Timeouts) -> None:
        """Zero fields are left unchanged (kernel semantics)."""
        ...

    def sync_daemons(self) -> list[SyncDaemon]: ...

    def start_sync_daemon(self, daemon: SyncDaemon) -> None: ...

    def stop_sync_daemon(self, state: Literal["master", "backup"]) -> None: ...

    def close(self) -> None: ...
