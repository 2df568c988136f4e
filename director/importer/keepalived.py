"""keepalived.conf -> directord config.

Walks the statement tree from `lexer` and maps what has a directord equivalent;
everything else becomes an `Unmapped` entry with file:line and a reason.
Every block type has a table of directive handlers and a state dataclass
that becomes output when the block ends. keepalived's health checks sit on
each real server while directord's sit on the virtual server: the first real
server's check is used and any real server whose check differs is listed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from director.importer import Conversion, keepalived_tracking, seconds
from director.importer.common import (
    Service,
    canonical_ip,
    endpoint,
    mask_to_prefix,
    present,
    to_float,
    to_int,
    with_prefix,
)
from director.importer.lexer import Node, convert_braced
from director.importer.table import Handler, Reader, Table

METHODS = {"NAT": "nat", "DR": "dr", "TUN": "tun"}
CHECK_TYPES = {"TCP_CHECK": "tcp", "HTTP_GET": "http", "SSL_GET": "https", "MISC_CHECK": "exec"}
OTHER_CHECKERS = ("SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "BFD_CHECK", "FILE_CHECK", "PING_CHECK")
TIMING = ("delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry")
# Service-wide check defaults: they apply to every real server wherever they are written.
VS_DEFAULTS = frozenset({*TIMING, "inhibit_on_failure", "alpha", "virtualhost"})
# keepalived's defaults where they differ from directord's.
DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = 1
SYNC_OPTIONS = {"id": ("syncid", to_int), "port": ("mcast_port", to_int), "ttl": ("mcast_ttl", to_int),
                "group": ("mcast_group", str), "maxlen": ("max_packet_size", to_int)}


# --- the state of each block while it is read ---------------------------------------------


@dataclass
class _File:
    """What the file says outside its service blocks; instances settle only once all is read."""

    version: int | None = None
    garp: dict[str, Any] = field(default_factory=dict)
    instances: list[_Instance] = field(default_factory=list)
    groups: list[Node] = field(default_factory=list)
    tracked: keepalived_tracking.Tracked = field(default_factory=keepalived_tracking.Tracked)
    script_user: Node | None = None
    runs_programs: list[Node] = field(default_factory=list)  # notify and MISC_CHECK lines (script_user's reach)


@dataclass
class _Instance:
    """One vrrp_instance block."""

    name: str
    interface: str | None = None
    vrid: int | None = None
    priority: int | None = None
    version: int | None = None
    advert: float | None = None
    preempt: bool | None = None
    preempt_delay: str | None = None
    preempt_delay_node: Node | None = None
    virtual_ips: list[str] | None = None
    unicast_src: str | None = None
    unicast_peers: list[str] | None = None
    garp: dict[str, Any] = field(default_factory=dict)
    track_interfaces: list[dict[str, Any]] | None = None
    notify: list[str] | None = None
    sync_group: str | None = None
    check_advert_addresses: bool | None = None
    # track_script / track_file lines read so far ({"name", "weight"?, "node"}), see keepalived_tracking
    track_scripts: list[dict[str, Any]] = field(default_factory=list)
    track_files: list[dict[str, Any]] = field(default_factory=list)
    track_processes: list[dict[str, Any]] = field(default_factory=list)
    keeps_tracking_weights: bool = False  # its sync group says sync_group_tracking_weight

    def output(self, garp: dict[str, Any]) -> dict[str, Any]:
        advert = seconds(self.advert) if self.advert is not None else None
        return present({
            "name": self.name, "interface": self.interface, "vrid": self.vrid, "priority": self.priority,
            "version": self.version, "advert_interval": advert, "preempt": self.preempt,
            "preempt_delay": self.preempt_delay, "virtual_ips": self.virtual_ips, "unicast_src": self.unicast_src,
            "unicast_peers": self.unicast_peers, "garp": garp or None, "track_interfaces": self.track_interfaces,
            "notify": self.notify, "sync_group": self.sync_group,
            "check_advert_addresses": self.check_advert_addresses})


@dataclass
class _Timing:
    """Check timing; a virtual server, a real server and a checker may each set it."""

    interval: str | None = None
    timeout: str | None = None
    transition_interval: str | None = None
    fall: int | None = None


@dataclass
class _Check:
    """One checker block (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK); equal checks compare equal."""

    type: str
    timing: _Timing = field(default_factory=_Timing)
    path: str | None = None
    host: str | None = None
    expect_status: list[int | str] | None = None
    expect_body: str | None = None
    command: list[str] | None = None
    dynamic_weight: bool | None = None
    port: int | None = None
    rise: int | None = None
    initial: str | None = None
    node: Node | None = field(default=None, compare=False)
    rs_port: int = field(default=0, compare=False)
    urls: int = field(default=0, compare=False)

    def output(self) -> dict[str, Any]:
        timing = self.timing
        return present({
            "type": self.type, "path": self.path, "host": self.host, "expect_status": self.expect_status,
            "expect_body": self.expect_body, "command": self.command, "dynamic_weight": self.dynamic_weight,
            "port": self.port, "interval": timing.interval, "timeout": timing.timeout,
            "transition_interval": timing.transition_interval, "rise": self.rise, "fall": timing.fall,
            "initial": self.initial,
            "tls_verify": False if self.type == "https" else None})  # SSL_GET does not verify the certificate


NO_CHECK = _Check("none")


@dataclass
class _RealServer:
    """One real_server block; `entry` is its output table, keys in the order they were written."""

    node: Node
    entry: dict[str, Any]
    timing: _Timing
    inhibit: bool
    checks: list[_Check] = field(default_factory=list)

    @property
    def check(self) -> _Check:
        return self.checks[0] if self.checks else NO_CHECK


@dataclass
class _VirtualServer:
    """One virtual_server block: the service being filled and what its real servers inherit."""

    node: Node
    service: Service
    initial: str = "up"
    virtualhost: str | None = None
    inhibit: bool = False
    timing: _Timing = field(default_factory=_Timing)
    real_servers: list[_RealServer] = field(default_factory=list)


_Timed = _VirtualServer | _RealServer | _Check  # the blocks that may set check timing


# --- the converter: typed reads of a directive's arguments -----------------------------------


class _Keepalived(Reader):
    """The reader every handler gets: typed reads of a directive's arguments that report misuse."""

    def __init__(self, conv: Conversion) -> None:
        super().__init__(conv)
        self.file = _File()

    def arg(self, node: Node, count: int = 1) -> list[str] | None:
        if len(node.args) < count:
            self.bad(node, f"needs {count} argument{'s' if count > 1 else ''}")
            return None
        if len(node.args) > count:
            self.skip(node, f"extra arguments {' '.join(node.args[count:])!r} ignored")
        return node.args[:count]

    def word(self, node: Node) -> str | None:
        args = self.arg(node)
        return args[0] if args else None

    def integer(self, node: Node) -> int | None:
        args = self.arg(node)
        value = to_int(args[0]) if args else None
        if args and value is None:
            self.bad(node, f"{args[0]!r} is not an integer")
        return value

    def number(self, node: Node) -> float | None:
        args = self.arg(node)
        value = to_float(args[0]) if args else None
        if args and value is None:
            self.bad(node, f"{args[0]!r} is not a number")
        return value

    def duration(self, node: Node) -> str | None:
        value = self.number(node)
        return seconds(value) if value is not None else None

    def block(self, node: Node) -> list[Node]:
        if node.children is None:
            self.bad(node, "expects a { ... } block")
            return []
        return node.children

    def method(self, node: Node) -> str | None:
        args = self.arg(node)
        if args and args[0].upper() not in METHODS:
            self.bad(node, f"{args[0]!r} is not NAT, DR or TUN")
            return None
        return METHODS[args[0].upper()] if args else None

    def command(self, node: Node) -> list[str] | None:
        """The arguments split like a shell would, or None (reported) when there is no program."""
        try:
            argv = shlex.split(" ".join(node.args))
        except ValueError as exc:
            self.bad(node, f"cannot split the command: {exc}")
            return None
        if not argv:
            self.bad(node, "needs a program")
            return None
        return argv

    def run(self, nodes: list[Node]) -> None:
        """Sync groups name instances and the global version applies to all: both settle last."""
        for node in nodes:
            TOP.read(self, node, self.file)
        for group in self.file.groups:
            _sync_group(self, group)
        keepalived_tracking.settle(self, self.file.tracked, self.file.runs_programs, self.file.script_user)
        if self.file.instances:
            self.conv.config["vrrp_instance"] = [_finish_instance(self, vi) for vi in self.file.instances]

    def config(self, section: str) -> dict[str, Any]:
        return self.conv.config.setdefault(section, {})


# --- the tables: one per block type, filled by the handlers below -------------------------------


def _top_level(reader: _Keepalived, node: Node, _state: object) -> None:
    reader.skip(node, "not supported by directord")


TOP: Table[_Keepalived, Node, _File] = Table(fallback=_top_level)
GLOBAL: Table[_Keepalived, Node, _File] = Table()
INSTANCE: Table[_Keepalived, Node, _Instance] = Table()
VIRTUAL: Table[_Keepalived, Node, _VirtualServer] = Table()
REAL: Table[_Keepalived, Node, _RealServer] = Table()
TCP_CHECK: Table[_Keepalived, Node, _Check] = Table()
HTTP_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)  # HTTP_GET and SSL_GET
MISC_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)
CHECK_TABLES = {"tcp": TCP_CHECK, "http": HTTP_CHECK, "https": HTTP_CHECK, "exec": MISC_CHECK}
URL: Table[_Keepalived, Node, _Check] = Table()


# --- top level -----------------------------------------------------------------------------


@TOP.on("global_defs")
def _global_defs(k: _Keepalived, node: Node, state: _File) -> None:
    for child in k.block(node):
        GLOBAL.read(k, child, state)


@TOP.on("vrrp_instance")
def _vrrp_instance(k: _Keepalived, node: Node, state: _File) -> None:
    instance = _Instance(node.args[0] if node.args else f"VI_{node.line}")
    for child in k.block(node):
        INSTANCE.read(k, child, instance)
    state.instances.append(instance)


@TOP.on("vrrp_script")
def _vrrp_script(k: _Keepalived, node: Node, state: _File) -> None:
    keepalived_tracking.vrrp_script(k, node, state.tracked)


@TOP.on("track_file", "vrrp_track_file")
def _track_file_block(k: _Keepalived, node: Node, state: _File) -> None:
    keepalived_tracking.track_file(k, node, state.tracked)


@TOP.on("vrrp_track_process")
def _track_process_block(k: _Keepalived, node: Node, state: _File) -> None:
    keepalived_tracking.track_process(k, node, state.tracked)


@TOP.on("vrrp_sync_group")
def _vrrp_sync_group(k: _Keepalived, node: Node, state: _File) -> None:
    state.groups.append(node)


@TOP.on("virtual_server")
def _virtual_server(k: _Keepalived, node: Node, state: _File) -> None:
    service = _service_header(k, node)
    if service is None:
        return
    vs = _VirtualServer(node, service)
    children = k.block(node)
    for child in [c for c in children if c.keyword in VS_DEFAULTS] + [
            c for c in children if c.keyword not in VS_DEFAULTS]:
        VIRTUAL.read(k, child, vs)
    k.conv.config.setdefault("virtual_server", []).append(_finish_vs(k, vs))


# --- global_defs ---------------------------------------------------------------------------


@GLOBAL.on("router_id", "lvs_id")
def _router_id(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.word(node)
    if value is not None:
        k.config("global")["router_id"] = value


GLOBAL.sets("version", _Keepalived.integer, "vrrp_version")


GLOBAL.says("directord has no script security mode: it runs a vrrp_script as its user (root unless set) and "
            "check-config warns of a root script another user can change, where keepalived refuses it (and, without "
            "script_user, runs scripts as keepalived_script or drops them when that user does not exist)",
            "enable_script_security")


@GLOBAL.on("script_user")
def _script_user(k: _Keepalived, node: Node, state: _File) -> None:
    keepalived_tracking.script_user(k, node, state.tracked)
    state.script_user = node


@GLOBAL.on("vrrp_rt_priority")
def _vrrp_rt_priority(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.integer(node)
    if value is not None:
        k.config("global")["vrrp_realtime_priority"] = value


@GLOBAL.on("vrrp_garp_master_repeat")
def _garp_repeat_default(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.integer(node)
    if value is not None:
        state.garp["repeat"] = value


@GLOBAL.on("vrrp_garp_interval", "vrrp_garp_master_refresh")
def _garp_time_default(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.duration(node)
    if value is not None:
        state.garp["interval" if node.keyword == "vrrp_garp_interval" else "refresh"] = value


@GLOBAL.on("lvs_sync_daemon")
def _lvs_sync_daemon(k: _Keepalived, node: Node, state: _File) -> None:
    """lvs_sync_daemon INTERFACE [INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDRESS]."""
    if not node.args:
        k.bad(node, "needs an interface")
        return
    sync: dict[str, Any] = {"interface": node.args[0]}
    named = len(node.args) > 1 and node.args[1] != "id"
    rest = node.args[2:] if named else node.args[1:]
    for option, text in zip(rest[::2], rest[1::2], strict=False):
        key, parse = SYNC_OPTIONS.get(option, ("", to_int))
        value = parse(text) if key else None
        if value is None:
            k.skip(node, f"option {option} {text} ignored")
        else:
            sync[key] = value
    if named:
        k.skip(node, f"directord runs the sync daemon on every instance's state, not only {node.args[1]}'s")
    k.config("ipvs")["sync_daemon"] = sync


@GLOBAL.on("lvs_timeouts")
def _lvs_timeouts(k: _Keepalived, node: Node, state: _File) -> None:
    timeouts = {}
    for option, text in zip(node.args[::2], node.args[1::2], strict=False):
        value = to_int(text)
        if option in ("tcp", "tcpfin", "udp") and value is not None:
            timeouts[option] = seconds(value)
        else:
            k.skip(node, f"option {option} {text} ignored")
    k.config("ipvs")["timeouts"] = timeouts


# --- vrrp_instance -------------------------------------------------------------------------


INSTANCE.sets("interface", _Keepalived.word, "interface")
INSTANCE.sets("unicast_src", _Keepalived.word, "unicast_src_ip")
INSTANCE.sets("vrid", _Keepalived.integer, "virtual_router_id")
INSTANCE.sets("priority", _Keepalived.integer, "priority")
INSTANCE.sets("version", _Keepalived.integer, "version")
INSTANCE.sets("advert", _Keepalived.number, "advert_int")


@INSTANCE.on("nopreempt")
def _nopreempt(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.preempt = False


@INSTANCE.on("skip_check_adv_addr")
def _skip_check_adv_addr(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.check_advert_addresses = False
    k.skip(node, "approximated: check_advert_addresses = false never checks the address list, where keepalived "
                 "still checks the adverts of a new master")


@INSTANCE.on("preempt_delay")
def _preempt_delay(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.preempt_delay, vi.preempt_delay_node = k.duration(node), node


@INSTANCE.on("virtual_ipaddress")
def _virtual_ipaddress(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.virtual_ips = _addresses(k, node, prefix=True)


@INSTANCE.on("unicast_peer")
def _unicast_peer(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.unicast_peers = _addresses(k, node, prefix=False)


@INSTANCE.on("track_interface")
def _track_interface(k: _Keepalived, node: Node, vi: _Instance) -> None:
    tracked = []
    for child in k.block(node):
        entry: dict[str, Any] = {"name": child.keyword}
        if len(child.args) == 2 and child.args[0] == "weight" and to_int(child.args[1]) is not None:
            entry["weight"] = to_int(child.args[1])
        elif child.args:
            k.skip(child, f"options {' '.join(child.args)!r} ignored")
        tracked.append(entry)
    vi.track_interfaces = tracked


@INSTANCE.on("track_script")
def _track_script(k: _Keepalived, node: Node, vi: _Instance) -> None:
    keepalived_tracking.references(k, node, k.file.tracked.scripts, "vrrp_script", vi.track_scripts)


@INSTANCE.on("track_file")
def _track_file(k: _Keepalived, node: Node, vi: _Instance) -> None:
    keepalived_tracking.references(k, node, k.file.tracked.files, "track_file", vi.track_files)


@INSTANCE.on("track_process")
def _track_process(k: _Keepalived, node: Node, vi: _Instance) -> None:
    keepalived_tracking.references(k, node, k.file.tracked.processes, "vrrp_track_process", vi.track_processes)


@INSTANCE.on("notify")
def _notify(k: _Keepalived, node: Node, vi: _Instance) -> None:
    k.file.runs_programs.append(node)
    argv = k.command(node)
    if argv is None:
        return
    vi.notify = argv
    k.skip(node, "mapped, but directord appends (instance, state, priority) where keepalived "
           "appends (INSTANCE|GROUP, name, state, priority): check the script's arguments")


@INSTANCE.on("garp_master_repeat")
def _garp_repeat(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.garp["repeat"] = k.integer(node)


@INSTANCE.on("garp_master_refresh", "garp_interval")
def _garp_time(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.garp["refresh" if node.keyword == "garp_master_refresh" else "interval"] = k.duration(node)


@INSTANCE.on("lvs_sync_daemon_interface")
def _sync_interface(k: _Keepalived, node: Node, vi: _Instance) -> None:
    value = k.word(node)
    if value is not None:
        k.config("ipvs").setdefault("sync_daemon", {})["interface"] = value


INSTANCE.says("no start state in directord: the priority decides who becomes master", "state")
INSTANCE.says("directord sends one burst of gratuitous ARPs on becoming master, no delayed second burst",
              "garp_master_delay")
INSTANCE.says("VRRP authentication is not supported (RFC 5798 removed it)", "authentication")


@INSTANCE.on_prefix("notify_")
def _notify_script(k: _Keepalived, node: Node, vi: _Instance) -> None:
    k.file.runs_programs.append(node)
    k.skip(node, "directord runs one notify program with (instance, state, priority): "
           "call this script from a wrapper set as notify")


def _addresses(k: _Keepalived, node: Node, prefix: bool) -> list[str]:
    """Entries of a virtual_ipaddress / unicast_peer block, one address a line."""
    result = []
    for child in k.block(node):
        text = with_prefix(child.keyword) if prefix else canonical_ip(child.keyword)
        if text is None:
            k.bad(child, f"{child.keyword!r} is not an address")
            continue
        result.append(text)
        if child.args:
            k.conv.note(child.file, child.line, f"{node.keyword} {child.keyword}",
                        f"options {' '.join(child.args)!r} ignored (directord adds the address "
                        "to the instance's interface)")
    return result


def _sync_group(k: _Keepalived, node: Node) -> None:
    instances = {vi.name: vi for vi in k.file.instances}
    name = node.args[0] if node.args else f"group_{node.line}"
    members: list[_Instance] = []
    tracking: list[Node] = []
    for child in k.block(node):
        if child.keyword in ("track_script", "track_file", "track_process", "sync_group_tracking_weight"):
            tracking.append(child)
            continue
        if child.keyword != "group":
            k.skip(child, "sync group option not supported; directord only changes members' state together")
            continue
        for member in k.block(child):
            for member_name in [member.keyword, *member.args]:
                if member_name in instances:
                    instances[member_name].sync_group = name
                    members.append(instances[member_name])
                else:
                    k.bad(member, f"no vrrp_instance named {member_name!r}")
    _sync_group_tracking(k, tracking, members)


def _sync_group_tracking(k: _Keepalived, tracking: list[Node], members: list[_Instance]) -> None:
    """A group's track_script / track_file lines track for every member; sync_group_tracking_weight
    keeps the members' weights (keepalived sets them to 0 otherwise)."""
    keep = any(child.keyword == "sync_group_tracking_weight" for child in tracking)
    for child in tracking:
        if child.keyword == "sync_group_tracking_weight":
            continue
        known, kind, field_name = {
            "track_script": (k.file.tracked.scripts, "vrrp_script", "track_scripts"),
            "track_file": (k.file.tracked.files, "track_file", "track_files"),
            "track_process": (k.file.tracked.processes, "vrrp_track_process", "track_processes"),
        }[child.keyword]
        found: list[dict[str, Any]] = []
        keepalived_tracking.references(k, child, known, kind, found)
        for vi in members:
            own = getattr(vi, field_name)
            own.extend(entry for entry in found if all(entry["name"] != e["name"] for e in own))
    for vi in members:
        vi.keeps_tracking_weights = keep


def _finish_instance(k: _Keepalived, vi: _Instance) -> dict[str, Any]:
    """Settle the version, garp defaults and preempt_delay of one instance."""
    if vi.version is None:
        ipv6 = any(":" in vip for vip in vi.virtual_ips or [])
        vi.version = k.file.version or (3 if ipv6 else 2)
    if vi.preempt_delay_node is not None and vi.preempt is False:
        vi.preempt_delay = None
        k.skip(vi.preempt_delay_node, "has no effect with nopreempt")
    tracked = k.file.tracked
    group = (k, vi.sync_group) if vi.sync_group and not vi.keeps_tracking_weights else None
    return vi.output({**k.file.garp, **vi.garp}) | present({
        "track_scripts": keepalived_tracking.output(vi.track_scripts, tracked.scripts, 0, group),
        "track_files": keepalived_tracking.output(vi.track_files, tracked.files, 1, group),
        "track_processes": keepalived_tracking.output(vi.track_processes, tracked.processes, 1, group)})


# --- virtual_server ------------------------------------------------------------------------


def _service_header(k: _Keepalived, node: Node) -> Service | None:
    """`virtual_server ADDRESS [PORT]` or `virtual_server fwmark N`; None (reported) otherwise."""
    args = node.args
    if len(args) == 2 and args[0] == "fwmark":
        fwmark = to_int(args[1])
        if fwmark is None:
            k.bad(node, f"fwmark {args[1]!r} is not an integer")
        return Service(fwmark=fwmark) if fwmark is not None else None
    if len(args) == 2 and args[0] == "group":
        k.skip(node, "virtual_server_group is not supported: write one virtual server per address")
        return None
    if len(args) not in (1, 2) or not canonical_ip(args[0]):
        k.bad(node, "needs ADDRESS PORT or fwmark N")
        return None
    port = to_int(args[1]) if len(args) == 2 else 0
    if port is None:
        k.bad(node, f"port {args[1]!r} is not an integer")
        return None
    return Service(address=canonical_ip(args[0]), port=port)


@VIRTUAL.on("lb_algo", "lvs_sched")
def _scheduler(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    value = k.word(node)
    if value is not None:
        vs.service.scheduler = value


@VIRTUAL.on("lb_kind", "lvs_method")
def _vs_method(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.service.method = k.method(node)


@VIRTUAL.on("protocol")
def _protocol(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    value = k.word(node)
    if value is not None:
        vs.service.protocol = value.lower()


@VIRTUAL.on("persistence_timeout")
def _persistence_timeout(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.service.persistence_timeout = k.duration(node)


@VIRTUAL.on("persistence_granularity")
def _persistence_granularity(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    value = k.word(node)
    prefix = mask_to_prefix(value) if value is not None else None
    if value is not None and prefix is None:
        k.bad(node, f"{value!r} is not a netmask")
    vs.service.persistence_netmask = prefix


@VIRTUAL.on("quorum")
def _quorum(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.service.quorum = k.integer(node)


@VIRTUAL.on("sorry_server")
def _sorry_server(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    address = canonical_ip(node.args[0]) if node.args else None
    if address is None:
        k.bad(node, "needs ADDRESS [PORT]")
        return
    port = to_int(node.args[1]) if len(node.args) > 1 else vs.service.port or None
    vs.service.sorry_server = endpoint(address, port) if port else address
    if len(node.args) > 2:
        k.skip(node, f"extra arguments {' '.join(node.args[2:])!r} ignored")


@VIRTUAL.on("alpha")
def _alpha(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.initial = "down"


@VIRTUAL.on("ops")
def _ops(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.service.one_packet = True


VIRTUAL.sets("virtualhost", _Keepalived.word, "virtualhost")


@VIRTUAL.on("inhibit_on_failure")
def _vs_inhibit(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.inhibit = True


@VIRTUAL.on("real_server")
def _real_server(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    address = canonical_ip(node.args[0]) if node.args else None
    if address is None:
        k.bad(node, "needs ADDRESS [PORT]")
        return
    port = to_int(node.args[1]) if len(node.args) > 1 else vs.service.port or 0
    rs = _RealServer(node, {"address": address, "port": port}, replace(vs.timing), vs.inhibit)
    for child in k.block(node):
        REAL.read(k, child, rs)
    for extra in rs.checks[1:]:
        k.skip(extra.node or node, "directord runs one check per real server: only the first checker is used")
    vs.real_servers.append(rs)


# --- real_server ---------------------------------------------------------------------------


@REAL.on("weight")
def _weight(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    rs.entry["weight"] = k.integer(node)


@REAL.on("uthreshold", "lthreshold")
def _threshold(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    rs.entry["upper_threshold" if node.keyword == "uthreshold" else "lower_threshold"] = k.integer(node)


@REAL.on("lb_kind", "lvs_method")
def _rs_method(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    rs.entry["method"] = k.method(node)


@REAL.on("inhibit_on_failure")
def _rs_inhibit(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    rs.inhibit = True


@REAL.on(*CHECK_TYPES)
def _checker(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    check = _Check(CHECK_TYPES[node.keyword], replace(rs.timing), node=node, rs_port=rs.entry["port"] or 0)
    table = CHECK_TABLES[check.type]
    for child in k.block(node):
        table.read(k, child, check)
    if check.type in ("http", "https") and check.expect_status is None:
        check.expect_status = ["200-299"]
    if check.type == "exec" and check.timing.timeout is None:
        interval = check.timing.interval
        check.timing.timeout = interval if interval is not None else seconds(DEFAULT_DELAY_LOOP)
    rs.checks.append(check)


REAL.says("this check type is not supported: the real server is never checked", *OTHER_CHECKERS)


@REAL.on_prefix("notify_")
def _rs_notify(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    k.skip(node, "directord has no per-real-server notify scripts (use the metrics or status)")


# --- check timing, wherever it is written, and the checkers -----------------------------------


def _timing(*names: str) -> Callable[[Handler[_Keepalived, Node, _Timed]], Handler[_Keepalived, Node, _Timed]]:
    """Register a timing handler on each block that may set check timing."""
    def register(handler: Handler[_Keepalived, Node, _Timed]) -> Handler[_Keepalived, Node, _Timed]:
        for table in (VIRTUAL, REAL, TCP_CHECK):
            table.on(*names)(handler)
        return handler
    return register


@_timing("retry", "nb_get_retry")
def _retry(k: _Keepalived, node: Node, state: _Timed) -> None:
    retries = k.integer(node)
    if retries is not None:
        state.timing.fall = retries + 1


@_timing("delay_loop")
def _delay_loop(k: _Keepalived, node: Node, state: _Timed) -> None:
    state.timing.interval = k.duration(node)


@_timing("connect_timeout")
def _connect_timeout(k: _Keepalived, node: Node, state: _Timed) -> None:
    state.timing.timeout = k.duration(node)


@_timing("delay_before_retry")
def _delay_before_retry(k: _Keepalived, node: Node, state: _Timed) -> None:
    state.timing.transition_interval = k.duration(node)


@TCP_CHECK.on("connect_port")
def _connect_port(k: _Keepalived, node: Node, check: _Check) -> None:
    port = k.integer(node)
    if port is not None and port != check.rs_port:
        check.port = port


@HTTP_CHECK.on("url")
def _url(k: _Keepalived, node: Node, check: _Check) -> None:
    check.urls += 1
    if check.urls > 1:
        k.skip(node, "directord checks one URL per real server: only the first is used")
        return
    for child in k.block(node):
        URL.read(k, child, check)


@HTTP_CHECK.on("virtualhost")
def _check_virtualhost(k: _Keepalived, node: Node, check: _Check) -> None:
    value = k.word(node)
    if value is not None:
        check.host = value


@MISC_CHECK.on("misc_path")
def _misc_path(k: _Keepalived, node: Node, check: _Check) -> None:
    k.file.runs_programs.append(node)
    argv = k.command(node)
    if argv is None:
        return
    check.command = argv
    if len(argv) > 1:
        k.skip(node, f"split into argv {argv!r}; directord runs no shell")


@MISC_CHECK.on("misc_timeout")
def _misc_timeout(k: _Keepalived, node: Node, check: _Check) -> None:
    check.timing.timeout = k.duration(node)


@MISC_CHECK.on("misc_dynamic")
def _misc_dynamic(k: _Keepalived, node: Node, check: _Check) -> None:
    check.dynamic_weight = True


@URL.on("path")
def _path(k: _Keepalived, node: Node, check: _Check) -> None:
    value = k.word(node)
    if value is not None:
        check.path = value


@URL.on("status_code")
def _status_code(k: _Keepalived, node: Node, check: _Check) -> None:
    check.expect_status = [int(a) if a.isdigit() else a for a in node.args]


@URL.on("regex")
def _regex(k: _Keepalived, node: Node, check: _Check) -> None:
    value = k.word(node)
    if value is not None:
        check.expect_body = value


URL.says("directord does not compare body digests (use expect_body with a regex)", "digest")


# --- the end of a virtual_server block --------------------------------------------------------


def _finish_vs(k: _Keepalived, vs: _VirtualServer) -> dict[str, Any]:
    """Settle defaults and choose the service's check and failure mode from its real servers."""
    service, node = vs.service, vs.node
    if service.protocol is None and not service.fwmark:
        service.protocol = "udp"
        k.skip(node, "no protocol line: keepalived (2.2.7, checked against the kernel table) then creates a "
               "UDP service, so udp is imported; add \"protocol TCP\" to the source if TCP was meant")
    service.take_name(k.names)
    service.method = service.method or "nat"
    if not service.persistence_timeout and service.persistence_netmask is not None:
        service.persistence_netmask = None
        k.conv.note(node.file, node.line, "persistence_granularity", "has no effect without persistence")
    if service.fwmark and any(":" in rs.entry["address"] for rs in vs.real_servers):
        service.family = "ipv6"
    service.check = _service_check(k, vs)
    service.on_failure = _on_failure(k, vs)
    service.real_server = [rs.entry for rs in vs.real_servers]
    return service.output()


def _chosen_check(k: _Keepalived, vs: _VirtualServer) -> _Check:
    """The first real server's check; every real server whose check differs is listed."""
    if not vs.real_servers:
        return NO_CHECK
    first = vs.real_servers[0]
    for rs in vs.real_servers[1:]:
        if rs.check != first.check:
            k.conv.note(rs.node.file, rs.node.line, f"real_server {endpoint(rs.entry['address'], rs.entry['port'])}",
                        _difference(rs.check, first.check, rs.entry["address"], first.entry["address"]))
    return first.check


def _service_check(k: _Keepalived, vs: _VirtualServer) -> dict[str, Any]:
    """The chosen check completed with keepalived's defaults, as directord's [virtual_server.check]."""
    chosen = _chosen_check(k, vs)
    check = replace(chosen, timing=replace(chosen.timing))
    if check.type == "none":
        return {"type": "none"}
    timing = check.timing
    timing.interval = timing.interval if timing.interval is not None else seconds(DEFAULT_DELAY_LOOP)
    if check.type != "exec" and timing.timeout is None:
        timing.timeout = seconds(DEFAULT_CONNECT_TIMEOUT)
    timing.fall = timing.fall if timing.fall is not None else DEFAULT_RETRY + 1
    check.rise, check.initial = 1, vs.initial
    if vs.virtualhost and check.type in ("http", "https") and check.host is None:
        check.host = vs.virtualhost
    if check.type != "exec" and check.port is None and any(rs.entry["port"] == 0 for rs in vs.real_servers):
        if not vs.service.port:
            checked = next(rs.check for rs in vs.real_servers if rs.checks)
            k.skip(checked.node or vs.node,
                   "real servers with port 0 and no connect_port: nothing to check, check type none")
            return {"type": "none"}
        check.port = vs.service.port
    return check.output()


def _on_failure(k: _Keepalived, vs: _VirtualServer) -> str:
    flags = [rs.inhibit for rs in vs.real_servers]
    if flags and any(flags) and not all(flags):
        node = vs.real_servers[flags.index(not flags[0])].node
        k.conv.note(node.file, node.line, "inhibit_on_failure",
                    "set on some real servers only; directord uses the first real server's choice for all")
    return "quiesce" if flags and flags[0] else "remove"


def _difference(check: _Check, chosen: _Check, address: str, first: str) -> str:
    """Why a real server's check cannot be kept, with the fix when it only names its own address."""
    reason = "its check differs from the first real server's, which directord uses for all"
    if check.type == "exec" == chosen.type:
        renamed = [arg.replace(address, first) for arg in check.command or []]
        if replace(check, command=renamed) == chosen:
            reason += (": the commands differ only by the real server's address; directord passes it in "
                       "DIRECTORD_ADDRESS, so make the script read that")
    return reason


def convert(path: str) -> Conversion:
    """Read keepalived.conf at PATH (and its includes) into a directord config."""
    return convert_braced(path, _Keepalived)
