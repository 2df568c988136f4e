"""Sans-IO codec for the IPVS generic netlink family: pure functions on bytes.

Everything here turns table values (`director.ipvs.model`) into netlink messages and
back, with no socket in sight, so it is unit-tested without a kernel and the
socket edge (`director.ipvs.kernel`) stays a thin loop. Attribute numbers and
layouts are the kernel's `include/uapi/linux/ip_vs.h` and the netlink uapi.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import struct

from director.ipvs.model import (
    SVC_F_MANAGED,
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    KernelDest,
    KernelService,
    Op,
    ServiceKey,
    ServiceSpec,
    Stats,
    SyncDaemon,
    Timeouts,
)
from nlmsg import (
    NLM_F_ACK,
    NLM_F_DUMP,
    DecodeError,
    attr,
    genl,
    parse_attrs,
)
from nlmsg.genl import (
    attr_be16,
    attr_str,
    attr_u8,
    attr_u16,
    attr_u32,
    genl_attrs,
    get_be16,
    get_str,
    get_u8,
    get_u16,
    get_u32,
    nested,
)

# --- netlink / generic netlink ------------------------------------------------

IPVS_GENL_NAME = "IPVS"
IPVS_GENL_VERSION = 1

# --- IPVS commands and attributes (include/uapi/linux/ip_vs.h) ----------------
CMD_NEW_SERVICE = 1
CMD_SET_SERVICE = 2
CMD_DEL_SERVICE = 3
CMD_GET_SERVICE = 4
CMD_NEW_DEST = 5
CMD_SET_DEST = 6
CMD_DEL_DEST = 7
CMD_GET_DEST = 8
CMD_NEW_DAEMON = 9
CMD_DEL_DAEMON = 10
CMD_GET_DAEMON = 11
CMD_SET_CONFIG = 12
CMD_GET_CONFIG = 13

CMD_ATTR_SERVICE = 1
CMD_ATTR_DEST = 2
CMD_ATTR_DAEMON = 3
CMD_ATTR_TIMEOUT_TCP = 4
CMD_ATTR_TIMEOUT_TCP_FIN = 5
CMD_ATTR_TIMEOUT_UDP = 6

SVC_ATTR_AF = 1
SVC_ATTR_PROTOCOL = 2
SVC_ATTR_ADDR = 3
SVC_ATTR_PORT = 4
SVC_ATTR_FWMARK = 5
SVC_ATTR_SCHED_NAME = 6
SVC_ATTR_FLAGS = 7
SVC_ATTR_TIMEOUT = 8
SVC_ATTR_NETMASK = 9
SVC_ATTR_STATS = 10
SVC_ATTR_PE_NAME = 11
SVC_ATTR_STATS64 = 12

DEST_ATTR_ADDR = 1
DEST_ATTR_PORT = 2
DEST_ATTR_FWD_METHOD = 3
DEST_ATTR_WEIGHT = 4
DEST_ATTR_U_THRESH = 5
DEST_ATTR_L_THRESH = 6
DEST_ATTR_ACTIVE_CONNS = 7
DEST_ATTR_INACT_CONNS = 8
DEST_ATTR_PERSIST_CONNS = 9
DEST_ATTR_STATS = 10
DEST_ATTR_ADDR_FAMILY = 11
DEST_ATTR_STATS64 = 12
DEST_ATTR_TUN_TYPE = 13
DEST_ATTR_TUN_PORT = 14
DEST_ATTR_TUN_FLAGS = 15

DAEMON_ATTR_STATE = 1
DAEMON_ATTR_MCAST_IFN = 2
DAEMON_ATTR_SYNC_ID = 3
DAEMON_ATTR_SYNC_MAXLEN = 4
DAEMON_ATTR_MCAST_GROUP = 5
DAEMON_ATTR_MCAST_GROUP6 = 6
DAEMON_ATTR_MCAST_PORT = 7
DAEMON_ATTR_MCAST_TTL = 8

# Stats attributes in order 1..10, mapped to `Stats` fields.
STATS_FIELDS = (
    "connections", "packets_in", "packets_out", "bytes_in", "bytes_out",
    "cps", "pps_in", "pps_out", "bps_in", "bps_out",
)

FAMILY_TO_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
AF_TO_FAMILY = {socket.AF_INET: 4, socket.AF_INET6: 6}
PROTO_NUM = {"tcp": 6, "udp": 17, "sctp": 132}
PROTO_NAME = {v: k for k, v in PROTO_NUM.items()}
# IP_VS_CONN_F_{MASQ,LOCALNODE,TUNNEL,DROUTE,BYPASS}
METHOD_NUM = {"nat": 0, "local": 1, "tun": 2, "dr": 3, "bypass": 4}
METHOD_NAME = {v: k for k, v in METHOD_NUM.items()}
TUN_TYPE_NUM = {"ipip": 0, "gue": 1, "gre": 2}
TUN_TYPE_NAME = {v: k for k, v in TUN_TYPE_NUM.items()}
TUN_FLAGS_NUM = {"nocsum": 0, "csum": 1, "remcsum": 2}
TUN_FLAGS_NAME = {v: k for k, v in TUN_FLAGS_NUM.items()}
DAEMON_STATE_NUM = {"master": 1, "backup": 2}

_U32 = struct.Struct("=I")
_BE32 = struct.Struct("!I")
# A full destination entry's fixed part: ADDR(16) PORT(be16) ADDR_FAMILY FWD WEIGHT U L.
_DEST_FULL = struct.Struct("=HH16s HH2sxx HHHxx HHI HHI HHI HHI")
_INET = {4: socket.AF_INET, 6: socket.AF_INET6}


def message(family_id: int, cmd: int, seq: int, flags: int, payload: bytes = b"") -> bytes:
    """An IPVS generic netlink request."""
    return genl.message(family_id, cmd, IPVS_GENL_VERSION, seq, flags, payload)


def getfamily_request(seq: int, name: str = IPVS_GENL_NAME) -> bytes:
    return genl.getfamily_request(seq, name)


# --- addresses ----------------------------------------------------------------------


def pack_addr(family: int, address: str) -> bytes:
    """The kernel's union nf_inet_addr: 16 bytes, IPv4 in the first four."""
    packed = socket.inet_pton(_INET[family], address)
    return packed + b"\0" * (16 - len(packed))


def unpack_addr(family: int, raw: bytes) -> str:
    """Canonical text (inet_ntop agrees with `ipaddress` for both families); DecodeError for
    an attribute too short for the family's address."""
    if len(raw) < (4 if family == 4 else 16):
        raise DecodeError(f"a {len(raw)}-byte address attribute for an IPv{family} entry")
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    text = socket.inet_ntop(socket.AF_INET6, raw[:16])
    # inet_ntop writes embedded IPv4 dotted; `ipaddress` (the canonical form here) may not.
    return str(ipaddress.IPv6Address(raw[:16])) if "." in text else text


def prefix_to_netmask(family: int, prefix: int) -> bytes:
    """IPv4 netmask goes as a big-endian mask, IPv6 as a native-order prefix length."""
    if family == 4:
        mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF if prefix else 0
        return _BE32.pack(mask)
    return _U32.pack(prefix)


def netmask_to_prefix(family: int, raw: bytes) -> int:
    if len(raw) < 4:
        raise DecodeError(f"a {len(raw)}-byte netmask attribute")
    if family == 4:
        return bin(_BE32.unpack_from(raw)[0]).count("1")
    return _U32.unpack_from(raw)[0]


# --- services -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)
def service_block(key: ServiceKey) -> bytes:
    """IPVS_CMD_ATTR_SERVICE naming `key`; cached as every dest op repeats it."""
    return nested(CMD_ATTR_SERVICE, service_key_attrs(key))


def service_key_attrs(key: ServiceKey) -> bytes:
    """The attributes that identify a service (fwmark: AF + FWMARK only)."""
    af = attr_u16(SVC_ATTR_AF, FAMILY_TO_AF[key.family])
    if key.fwmark:
        return af + attr_u32(SVC_ATTR_FWMARK, key.fwmark)
    return (
        af
        + attr_u16(SVC_ATTR_PROTOCOL, PROTO_NUM[key.protocol])
        + attr(SVC_ATTR_ADDR, pack_addr(key.family, key.address))
        + attr_be16(SVC_ATTR_PORT, key.port)
    )


def service_full_attrs(spec: ServiceSpec) -> bytes:
    """A full service entry; mask = SVC_F_MANAGED so kernel-owned flag bits survive edits."""
    out = (
        service_key_attrs(spec.key)
        + attr_str(SVC_ATTR_SCHED_NAME, spec.scheduler)
        + attr(SVC_ATTR_FLAGS, struct.pack("=II", spec.flags & SVC_F_MANAGED, SVC_F_MANAGED))
        + attr_u32(SVC_ATTR_TIMEOUT, spec.timeout)
        + attr(SVC_ATTR_NETMASK, prefix_to_netmask(spec.key.family, spec.netmask))
    )
    if spec.pe_name:
        out += attr_str(SVC_ATTR_PE_NAME, spec.pe_name)
    return out


_STATS64_PACKED = struct.Struct("=" + "HHQ" * len(STATS_FIELDS))
_STATS64_TYPES = tuple(range(1, len(STATS_FIELDS) + 1))


def decode_stats(raw: bytes | None) -> Stats:
    """Stats from a nested STATS64 (all u64) or legacy STATS (u32 and u64 mixed)."""
    if raw and len(raw) == _STATS64_PACKED.size:
        # The usual STATS64 layout, ten unpadded u64 in order: one unpack, not ten.
        values = _STATS64_PACKED.unpack(raw)
        if values[1::3] == _STATS64_TYPES:
            return Stats(*values[2::3])
    stats = Stats()
    if not raw:
        return stats
    for kind, value in parse_attrs(raw).items():
        if 1 <= kind <= len(STATS_FIELDS):
            if len(value) < 4:
                raise DecodeError(f"stats attribute {kind} has {len(value)} bytes, too few for a counter")
            fmt = "=Q" if len(value) >= 8 else "=I"
            setattr(stats, STATS_FIELDS[kind - 1], struct.unpack_from(fmt, value)[0])
    return stats


def _pick_stats(attrs: dict[int, bytes], stats64: int, stats32: int) -> Stats:
    return decode_stats(attrs.get(stats64) or attrs.get(stats32))


def decode_service(attrs: dict[int, bytes]) -> KernelService:
    """A KernelService from the attributes nested in IPVS_CMD_ATTR_SERVICE."""
    family = AF_TO_FAMILY.get(get_u16(attrs, SVC_ATTR_AF))
    if family is None:
        raise DecodeError(f"service with unknown address family {get_u16(attrs, SVC_ATTR_AF)}")
    fwmark = get_u32(attrs, SVC_ATTR_FWMARK)
    if fwmark:
        key = ServiceKey(family, "", "", 0, fwmark)
    else:
        proto = get_u16(attrs, SVC_ATTR_PROTOCOL)
        key = ServiceKey(
            family,
            PROTO_NAME.get(proto, str(proto)),
            unpack_addr(family, attrs.get(SVC_ATTR_ADDR, b"\0" * 16)),
            get_be16(attrs, SVC_ATTR_PORT),
        )
    flags = get_u32(attrs, SVC_ATTR_FLAGS) & SVC_F_MANAGED  # the flags; the mask after them is ours
    netmask_raw = attrs.get(SVC_ATTR_NETMASK)
    netmask = netmask_to_prefix(family, netmask_raw) if netmask_raw else (32 if family == 4 else 128)
    spec = ServiceSpec(
        key=key,
        scheduler=get_str(attrs, SVC_ATTR_SCHED_NAME),
        flags=flags,
        timeout=get_u32(attrs, SVC_ATTR_TIMEOUT),
        netmask=netmask,
        pe_name=get_str(attrs, SVC_ATTR_PE_NAME),
    )
    return KernelService(spec=spec, stats=_pick_stats(attrs, SVC_ATTR_STATS64, SVC_ATTR_STATS))


def decode_service_message(payload: bytes | memoryview) -> KernelService:
    _cmd, attrs = genl_attrs(payload)
    if CMD_ATTR_SERVICE not in attrs:
        raise DecodeError("service message without IPVS_CMD_ATTR_SERVICE")
    return decode_service(parse_attrs(attrs[CMD_ATTR_SERVICE]))


# --- destinations -----------------------------------------------------------------------


def dest_key_attrs(key: DestKey) -> bytes:
    return (
        attr(DEST_ATTR_ADDR, pack_addr(key.family, key.address))
        + attr_be16(DEST_ATTR_PORT, key.port)
        + attr_u16(DEST_ATTR_ADDR_FAMILY, FAMILY_TO_AF[key.family])
    )


def dest_full_attrs(spec: DestSpec) -> bytes:
    key = spec.key
    out = _DEST_FULL.pack(
        20, DEST_ATTR_ADDR, pack_addr(key.family, key.address),
        6, DEST_ATTR_PORT, key.port.to_bytes(2, "big"),
        6, DEST_ATTR_ADDR_FAMILY, FAMILY_TO_AF[key.family],
        8, DEST_ATTR_FWD_METHOD, METHOD_NUM[spec.method],
        8, DEST_ATTR_WEIGHT, spec.weight,
        8, DEST_ATTR_U_THRESH, spec.upper_threshold,
        8, DEST_ATTR_L_THRESH, spec.lower_threshold,
    )
    if spec.method == "tun":
        out += (
            attr_u8(DEST_ATTR_TUN_TYPE, TUN_TYPE_NUM[spec.tunnel_type])
            + attr_be16(DEST_ATTR_TUN_PORT, spec.tunnel_port)
            + attr_u16(DEST_ATTR_TUN_FLAGS, TUN_FLAGS_NUM[spec.tunnel_checksum])
        )
    return out


# A dump at 10k services decodes 40k destinations whose programmable attributes rarely change
# between two reads (the audit re-reads each every audit_period): their bytes are compared and
# the spec decoded once. Bounded: cleared when full.
_SPEC_ATTRS = (DEST_ATTR_ADDR, DEST_ATTR_PORT, DEST_ATTR_ADDR_FAMILY, DEST_ATTR_FWD_METHOD, DEST_ATTR_WEIGHT,
               DEST_ATTR_U_THRESH, DEST_ATTR_L_THRESH, DEST_ATTR_TUN_TYPE, DEST_ATTR_TUN_PORT, DEST_ATTR_TUN_FLAGS)
_SPEC_CACHE_MAX = 1 << 17
_spec_cache: dict[tuple, DestSpec] = {}
_stats_cache: dict[bytes | None, Stats] = {}


def decode_dest(attrs: dict[int, bytes], service_family: int) -> KernelDest:
    """A KernelDest from the attributes nested in IPVS_CMD_ATTR_DEST."""
    get = attrs.get
    raw = (service_family, *(get(kind) for kind in _SPEC_ATTRS))
    spec = _spec_cache.get(raw)
    if spec is None:
        spec = _decode_dest_spec(attrs, service_family)
        if len(_spec_cache) >= _SPEC_CACHE_MAX:
            _spec_cache.clear()
        _spec_cache[raw] = spec
    stats_raw = get(DEST_ATTR_STATS64) or get(DEST_ATTR_STATS)
    stats = _stats_cache.get(stats_raw)
    if stats is None:
        stats = decode_stats(stats_raw)
        if len(_stats_cache) >= _SPEC_CACHE_MAX:
            _stats_cache.clear()
        _stats_cache[stats_raw] = stats  # shared: a decoded Stats is never changed afterwards
    return KernelDest(
        spec=spec,
        active_conns=get_u32(attrs, DEST_ATTR_ACTIVE_CONNS),
        inactive_conns=get_u32(attrs, DEST_ATTR_INACT_CONNS),
        persistent_conns=get_u32(attrs, DEST_ATTR_PERSIST_CONNS),
        stats=stats,
    )


def _decode_dest_spec(attrs: dict[int, bytes], service_family: int) -> DestSpec:
    af = get_u16(attrs, DEST_ATTR_ADDR_FAMILY)
    family = AF_TO_FAMILY.get(af, service_family)
    method = METHOD_NAME.get(get_u32(attrs, DEST_ATTR_FWD_METHOD) & 7, "nat")
    return DestSpec(
        key=DestKey(
            family,
            unpack_addr(family, attrs.get(DEST_ATTR_ADDR, b"\0" * 16)),
            get_be16(attrs, DEST_ATTR_PORT),
        ),
        method=method,  # type: ignore[arg-type]
        weight=get_u32(attrs, DEST_ATTR_WEIGHT),
        upper_threshold=get_u32(attrs, DEST_ATTR_U_THRESH),
        lower_threshold=get_u32(attrs, DEST_ATTR_L_THRESH),
        tunnel_type=TUN_TYPE_NAME.get(get_u8(attrs, DEST_ATTR_TUN_TYPE), "ipip"),  # type: ignore[arg-type]
        tunnel_port=get_be16(attrs, DEST_ATTR_TUN_PORT),
        tunnel_checksum=TUN_FLAGS_NAME.get(get_u16(attrs, DEST_ATTR_TUN_FLAGS), "nocsum"),  # type: ignore[arg-type]
    )


def decode_dest_message(payload: bytes | memoryview, service_family: int) -> KernelDest:
    _cmd, attrs = genl_attrs(payload)
    if CMD_ATTR_DEST not in attrs:
        raise DecodeError("destination message without IPVS_CMD_ATTR_DEST")
    return decode_dest(parse_attrs(attrs[CMD_ATTR_DEST]), service_family)


# --- operations -----------------------------------------------------------------------------


def encode_op(family_id: int, op: Op, seq: int, flags: int = NLM_F_ACK) -> bytes:
    """The one netlink request that carries `op`."""
    kind = type(op)
    if kind is AddDest or kind is EditDest:
        cmd = CMD_NEW_DEST if kind is AddDest else CMD_SET_DEST
        payload = service_block(op.service) + nested(CMD_ATTR_DEST, dest_full_attrs(op.spec))
    elif kind is AddService or kind is EditService:
        cmd = CMD_NEW_SERVICE if kind is AddService else CMD_SET_SERVICE
        payload = nested(CMD_ATTR_SERVICE, service_full_attrs(op.spec))
    elif kind is DeleteDest:
        cmd = CMD_DEL_DEST
        payload = service_block(op.service) + nested(CMD_ATTR_DEST, dest_key_attrs(op.key))
    elif kind is DeleteService:
        cmd = CMD_DEL_SERVICE
        payload = service_block(op.key)
    else:
        raise TypeError(f"not an IPVS op: {op!r}")
    return message(family_id, cmd, seq, flags, payload)


def describe_op(op: Op) -> str:
    """What an op does, in words an operator recognises in an error line."""
    if isinstance(op, AddService):
        return f"add virtual service {op.spec.key}"
    if isinstance(op, EditService):
        return f"edit virtual service {op.spec.key}"
    if isinstance(op, DeleteService):
        return f"delete virtual service {op.key}"
    if isinstance(op, AddDest):
        return f"add real server {op.spec.key} to {op.service}"
    if isinstance(op, EditDest):
        return f"edit real server {op.spec.key} in {op.service}"
    if isinstance(op, DeleteDest):
        return f"delete real server {op.key} from {op.service}"
    raise TypeError(f"not an IPVS op: {op!r}")


def op_error_message(op: Op, errno: int) -> str:
    return f"{describe_op(op)}: {os.strerror(errno)}"


def dest_dump_request(family_id: int, service: ServiceKey, seq: int) -> bytes:
    return message(family_id, CMD_GET_DEST, seq, NLM_F_DUMP, service_block(service))


def service_get_request(family_id: int, service: ServiceKey, seq: int) -> bytes:
    """IPVS_CMD_GET_SERVICE for one service (ESRCH when the kernel has none). A plain get is
    answered by one message and no NLMSG_DONE: the ack ends the reply."""
    return message(family_id, CMD_GET_SERVICE, seq, NLM_F_ACK, service_block(service))


def service_dump_request(family_id: int, seq: int) -> bytes:
    return message(family_id, CMD_GET_SERVICE, seq, NLM_F_DUMP)


# --- timeouts and sync daemons ----------------------------------------------------------------


def get_config_request(family_id: int, seq: int) -> bytes:
    return message(family_id, CMD_GET_CONFIG, seq, NLM_F_ACK)


def set_config_request(family_id: int, timeouts: Timeouts, seq: int) -> bytes:
    payload = (
        attr_u32(CMD_ATTR_TIMEOUT_TCP, timeouts.tcp)
        + attr_u32(CMD_ATTR_TIMEOUT_TCP_FIN, timeouts.tcpfin)
        + attr_u32(CMD_ATTR_TIMEOUT_UDP, timeouts.udp)
    )
    return message(family_id, CMD_SET_CONFIG, seq, NLM_F_ACK, payload)


def decode_timeouts(payload: bytes | memoryview) -> Timeouts:
    _cmd, attrs = genl_attrs(payload)
    return Timeouts(
        tcp=get_u32(attrs, CMD_ATTR_TIMEOUT_TCP),
        tcpfin=get_u32(attrs, CMD_ATTR_TIMEOUT_TCP_FIN),
        udp=get_u32(attrs, CMD_ATTR_TIMEOUT_UDP),
    )


def new_daemon_request(family_id: int, daemon: SyncDaemon, seq: int) -> bytes:
    inner = (
        attr_u32(DAEMON_ATTR_STATE, DAEMON_STATE_NUM[daemon.state])
        + attr_str(DAEMON_ATTR_MCAST_IFN, daemon.interface)
        + attr_u32(DAEMON_ATTR_SYNC_ID, daemon.syncid)
    )
    if daemon.max_packet_size:
        inner += attr_u16(DAEMON_ATTR_SYNC_MAXLEN, daemon.max_packet_size)
    if daemon.mcast_group:
        group = ipaddress.ip_address(daemon.mcast_group)
        kind = DAEMON_ATTR_MCAST_GROUP if group.version == 4 else DAEMON_ATTR_MCAST_GROUP6
        inner += attr(kind, group.packed)
    if daemon.mcast_port:
        inner += attr_u16(DAEMON_ATTR_MCAST_PORT, daemon.mcast_port)
    if daemon.mcast_ttl:
        inner += attr_u8(DAEMON_ATTR_MCAST_TTL, daemon.mcast_ttl)
    return message(family_id, CMD_NEW_DAEMON, seq, NLM_F_ACK, nested(CMD_ATTR_DAEMON, inner))


def del_daemon_request(family_id: int, state: str, seq: int) -> bytes:
    inner = attr_u32(DAEMON_ATTR_STATE, DAEMON_STATE_NUM[state])
    return message(family_id, CMD_DEL_DAEMON, seq, NLM_F_ACK, nested(CMD_ATTR_DAEMON, inner))


def daemon_dump_request(family_id: int, seq: int) -> bytes:
    return message(family_id, CMD_GET_DAEMON, seq, NLM_F_DUMP)


def _address_bytes(raw: bytes, size: int) -> bytes:
    """The first `size` bytes of an address attribute; DecodeError when it is shorter."""
    if len(raw) < size:
        raise DecodeError(f"a {len(raw)}-byte multicast group attribute, {size} expected")
    return raw[:size]


def decode_daemon_message(payload: bytes | memoryview) -> SyncDaemon:
    _cmd, attrs = genl_attrs(payload)
    if CMD_ATTR_DAEMON not in attrs:
        raise DecodeError("daemon message without IPVS_CMD_ATTR_DAEMON")
    inner = parse_attrs(attrs[CMD_ATTR_DAEMON])
    state = {1: "master", 2: "backup"}.get(get_u32(inner, DAEMON_ATTR_STATE))
    if state is None:
        raise DecodeError(f"unknown sync daemon state {get_u32(inner, DAEMON_ATTR_STATE)}")
    group = ""
    if inner.get(DAEMON_ATTR_MCAST_GROUP6):
        group = str(ipaddress.IPv6Address(_address_bytes(inner[DAEMON_ATTR_MCAST_GROUP6], 16)))
    elif inner.get(DAEMON_ATTR_MCAST_GROUP):
        group = str(ipaddress.IPv4Address(_address_bytes(inner[DAEMON_ATTR_MCAST_GROUP], 4)))
    return SyncDaemon(
        state=state,  # type: ignore[arg-type]
        interface=get_str(inner, DAEMON_ATTR_MCAST_IFN),
        syncid=get_u32(inner, DAEMON_ATTR_SYNC_ID),
        max_packet_size=get_u16(inner, DAEMON_ATTR_SYNC_MAXLEN),
        mcast_group=group,
        mcast_port=get_u16(inner, DAEMON_ATTR_MCAST_PORT),
        mcast_ttl=get_u8(inner, DAEMON_ATTR_MCAST_TTL),
    )
