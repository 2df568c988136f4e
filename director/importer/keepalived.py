"""keepalived.conf -> directord config.

Walks the statement tree from `lexer` and maps what has a directord equivalent;
everything else becomes an `Unmapped` entry with file:line and a reason.
Every block type has a table of directive handlers and a state dataclass
that becomes output when the block ends. keepalived's health checks sit on
each real server while directord's sit on the virtual server: the first real
server's check is used and any real server whose check differs is listed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from director.config.mail_keys import mail_address, parse_smtp_server
from director.config.model import SCHEDULER_FLAGS
from director.importer import Conversion, keepalived_ip, keepalived_tracking, seconds
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
from director.importer.keepalived_keywords import unknown as _unknown
from director.importer.lexer import Node, convert_braced
from director.importer.table import NO_EQUIVALENT, Handler, Reader, Table

METHODS = {"NAT": "nat", "DR": "dr", "TUN": "tun"}
CHECK_TYPES = {"TCP_CHECK": "tcp", "HTTP_GET": "http", "SSL_GET": "https", "MISC_CHECK": "exec"}
OTHER_CHECKERS = ("SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "BFD_CHECK", "FILE_CHECK", "PING_CHECK")
# the checkers of directord's dns, udp, ping and smtp checks (issue 19)
CHECK_TYPES |= {"DNS_CHECK": "dns", "UDP_CHECK": "udp", "PING_CHECK": "ping", "SMTP_CHECK": "smtp"}
OTHER_CHECKERS = tuple(name for name in OTHER_CHECKERS if name not in CHECK_TYPES)
DEFAULT_RETRIES = {"dns": 3}  # keepalived's retry default where a checker has its own
TIMING = ("delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry")
# Service-wide check defaults: they apply to every real server wherever they are written.
VS_DEFAULTS = frozenset({*TIMING, "inhibit_on_failure", "alpha", "virtualhost"})
# keepalived's defaults where they differ from directord's.
DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = 1
DEFAULT_PERSISTENCE = 360.0  # a bare persistence_timeout: keepalived's six minutes
DEFAULT_PRIORITY, OWNER_PRIORITY = 100, 255  # keepalived's priority without, and with, state MASTER
AUTH_TYPES = {"PASS": "pass", "AH": "ah"}  # keepalived's spellings, compared exactly
AUTH_PASS_BYTES = 8  # what a VRRPv2 advert carries of auth_pass
SYNC_OPTIONS = {"id": ("syncid", to_int), "port": ("mcast_port", to_int), "ttl": ("mcast_ttl", to_int),
                "group": ("mcast_group", str), "maxlen": ("max_packet_size", to_int)}


# --- the state of each block while it is read ---------------------------------------------


@dataclass
class _File:
    """What the file says outside its service blocks; instances settle only once all is read."""

    version: int | None = None
    garp: dict[str, Any] = field(default_factory=dict)
    gna_interval: tuple[str, Node] | None = None  # vrrp_gna_interval: the round interval of IPv6 instances
    instances: list[_Instance] = field(default_factory=list)
    groups: list[Node] = field(default_factory=list)
    rule_priority: int = keepalived_ip.FIRST_UNNUMBERED_RULE  # the next one keepalived gives a rule
    tracked: keepalived_tracking.Tracked = field(default_factory=keepalived_tracking.Tracked)
    script_user: Node | None = None
    script_security: Node | None = None  # enable_script_security
    runs_programs: list[Node] = field(default_factory=list)  # notify and MISC_CHECK lines (script_user's reach)
    sync_node: Node | None = None  # the lvs_sync_daemon line that named an instance
    strict: Node | None = None  # vrrp_strict
    firewall: list[Node] = field(default_factory=list)  # vrrp_iptables, vrrp_ipsets


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
    state_node: Node | None = None  # `state MASTER`; BACKUP is what every instance starts as anyway
    nopreempt_node: Node | None = None
    virtual_ips: list[str | dict[str, Any]] | None = None
    # virtual_ipaddress_excluded, virtual_routes, virtual_rules; entries with a label, checked
    # against the interface once the block is read
    excluded_ips: list[str | dict[str, Any]] | None = None
    virtual_routes: list[dict[str, Any]] | None = None
    virtual_rules: list[dict[str, Any]] | None = None
    labelled: list[tuple[Node, Node, str, int]] = field(default_factory=list)  # block, line, key, index
    unicast_src: str | None = None
    unicast_ttl: dict[str, int] = field(default_factory=dict)  # unicast_ttl, unicast_min_ttl, unicast_max_ttl
    unicast_peers: list[str] | None = None
    garp: dict[str, Any] = field(default_factory=dict)
    track_interfaces: list[dict[str, Any]] | None = None
    track_own_interface: bool | None = None
    notify: list[str] | None = None
    hooks: dict[str, list[str]] = field(default_factory=dict)  # notify_master ... notify_stop
    sync_group: str | None = None
    check_advert_addresses: bool | None = None
    use_vmac: bool | None = None
    vmac_interface: str | None = None
    vmac_xmit_base: bool | None = None
    vmac_node: Node | None = None
    vmac_mac: str | None = None  # use_vmac's own MAC, judged once the family is known
    smtp_alert: bool | None = None
    auth_type: str | None = None
    auth_pass: str | None = None
    auth_node: Node | None = None  # the authentication block
    auth_pass_node: Node | None = None
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
            "preempt_delay": self.preempt_delay, "virtual_ips": self.virtual_ips, "excluded_ips": self.excluded_ips,
            "virtual_routes": self.virtual_routes, "virtual_rules": self.virtual_rules, "unicast_src": self.unicast_src,
            **self.unicast_ttl,
            "unicast_peers": self.unicast_peers, "auth_type": self.auth_type, "auth_pass": self.auth_pass,
            "garp": garp or None, "track_interfaces": self.track_interfaces,
            "track_own_interface": self.track_own_interface,
            "notify": self.notify, "notify_arguments": "keepalived" if self.notify else None, **self.hooks,
            "sync_group": self.sync_group,
            "check_advert_addresses": self.check_advert_addresses, "use_vmac": self.use_vmac,
            "vmac_interface": self.vmac_interface, "vmac_xmit_base": self.vmac_xmit_base,
            "smtp_alert": self.smtp_alert})


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
    address: str | None = None
    bind_address: str | None = None
    bind_interface: str | None = None
    rise: int | None = None
    initial: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # dns, udp, smtp options (issue 19), in output order
    node: Node | None = field(default=None, compare=False)
    rs_port: int = field(default=0, compare=False)
    digest: str | None = None
    regex_no_match: bool | None = None
    http_version: str | None = None
    url_list: list[dict[str, Any]] = field(default_factory=list)  # url blocks, as [[check.urls]] entries

    def output(self) -> dict[str, Any]:
        timing = self.timing
        return present({
            "type": self.type, "http_version": self.http_version, "path": self.path, "host": self.host,
            "expect_status": self.expect_status, "expect_body": self.expect_body,
            "regex_no_match": self.regex_no_match, "digest": self.digest, "urls": self.url_list or None,
            "command": self.command, "dynamic_weight": self.dynamic_weight,
            "port": self.port, "address": self.address, "bind_address": self.bind_address,
            "bind_interface": self.bind_interface, "interval": timing.interval, "timeout": timing.timeout,
            "transition_interval": timing.transition_interval, "rise": self.rise, "fall": timing.fall,
            "initial": self.initial,
            "tls_verify": False if self.type == "https" else None} | self.extra)  # SSL_GET does not verify


NO_CHECK = _Check("none")


@dataclass
class _RealServer:
    """One real_server block; `entry` is its output table, keys in the order they were written."""

    node: Node
    entry: dict[str, Any]
    timing: _Timing
    inhibit: bool
    checks: list[_Check] = field(default_factory=list)
    virtualhost: str | None = None

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
    smtp_alert: bool | None = None
    flags: dict[int, Node] = field(default_factory=dict)  # scheduler flag slot -> the line that set it
    hooks: dict[str, Any] = field(default_factory=dict)  # quorum_up, quorum_down, omega


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
        _settle_script_security(self)
        _settle_sync_instance(self)
        if self.file.instances:
            self.conv.config["vrrp_instance"] = [_finish_instance(self, vi) for vi in self.file.instances]
        _settle_strict(self)
        _settle_firewall(self)

    def config(self, section: str) -> dict[str, Any]:
        return self.conv.config.setdefault(section, {})


# --- the tables: one per block type, filled by the handlers below -------------------------------


TOP: Table[_Keepalived, Node, _File] = Table(fallback=_unknown("not supported by directord"))
def _global_unknown(reader: _Keepalived, node: Node, state: _File) -> None:
    """An instance's announcement directive in global_defs: keepalived knows only its vrrp_ form
    there (the default of every instance) and ignores this one."""
    if node.keyword in GARP_COUNTS or node.keyword in GARP_TIMES:
        reader.remark(node, f"keepalived ignores it in global_defs (vrrp_{node.keyword} sets every instance's "
                            "default), and so does directord")
    else:
        _unknown(NO_EQUIVALENT)(reader, node, state)


GLOBAL: Table[_Keepalived, Node, _File] = Table(fallback=_global_unknown)
INSTANCE: Table[_Keepalived, Node, _Instance] = Table(fallback=_unknown(NO_EQUIVALENT))
VIRTUAL: Table[_Keepalived, Node, _VirtualServer] = Table(fallback=_unknown(NO_EQUIVALENT))
REAL: Table[_Keepalived, Node, _RealServer] = Table(fallback=_unknown(NO_EQUIVALENT))
TCP_CHECK: Table[_Keepalived, Node, _Check] = Table(fallback=_unknown(NO_EQUIVALENT))
HTTP_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)  # HTTP_GET and SSL_GET
MISC_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)
CHECK_TABLES = {"tcp": TCP_CHECK, "http": HTTP_CHECK, "https": HTTP_CHECK, "exec": MISC_CHECK}
DNS_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)  # issue 19
UDP_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)
SMTP_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)
PING_CHECK: Table[_Keepalived, Node, _Check] = Table(TCP_CHECK)
CHECK_TABLES |= {"dns": DNS_CHECK, "udp": UDP_CHECK, "smtp": SMTP_CHECK, "ping": PING_CHECK}
URL: Table[_Keepalived, Node, dict[str, Any]] = Table(fallback=_unknown(NO_EQUIVALENT))  # one url { }
AUTH: Table[_Keepalived, Node, _Instance] = Table(fallback=_unknown(NO_EQUIVALENT))  # authentication { }


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


@GLOBAL.on("enable_script_security")
def _script_security(k: _Keepalived, node: Node, state: _File) -> None:
    k.config("global")["script_security"] = True
    state.script_security = node


def _settle_script_security(k: _Keepalived) -> None:
    """keepalived disables an insecure script where directord refuses the config (a remark says so);
    without script_user keepalived runs scripts as keepalived_script, or drops them when that
    user does not exist, which the import cannot know."""
    node = k.file.script_security
    if node is None:
        return
    if k.file.script_user is None:
        k.skip(node, "mapped as script_security = true, but keepalived also runs scripts as keepalived_script "
                     "(or drops them where that user does not exist): set each script's user")
    else:
        k.remark(node, "script_security = true: directord refuses a config with a root program another user "
                       "can change, where keepalived disables that program")


@GLOBAL.on("script_user")
def _script_user(k: _Keepalived, node: Node, state: _File) -> None:
    keepalived_tracking.script_user(k, node, state.tracked)
    state.script_user = node


@GLOBAL.on("vrrp_skip_check_adv_addr")
def _skip_check_default(k: _Keepalived, node: Node, state: _File) -> None:
    k.remark(node, SKIP_CHECK)


# keepalived's vrrp_strict sets no_accept: a firewall rule drops what is addressed to the VIPs
NO_ACCEPT = ("keepalived's vrrp_strict also sets no_accept, whose firewall rule drops every packet addressed to "
             "the VIPs (no ping, no IPVS service on them) unless the priority is 255; directord always takes "
             "traffic to its VIPs")


@GLOBAL.on("vrrp_strict")
def _vrrp_strict(k: _Keepalived, node: Node, state: _File) -> None:
    """The protocol rules carry over (`vrrp_strict = true`, settled per instance as keepalived
    settles them); no_accept does not, so the line stays flagged."""
    state.strict = node


@GLOBAL.on("vrrp_iptables", "vrrp_ipsets")
def _vrrp_firewall(k: _Keepalived, node: Node, state: _File) -> None:
    """Where keepalived puts its firewall rules: it has them only for no_accept (flagged with
    vrrp_strict) and to keep IGMP/MLD reports off VMACs (directord's use_vmac docs give the
    sysctl for that); directord writes no firewall rules, so the chain names mean nothing here."""
    state.firewall.append(node)


def _settle_firewall(k: _Keepalived) -> None:
    """vrrp_iptables / vrrp_ipsets once the instances are known: with a VMAC the chain kept IGMP/MLD
    reports off it in keepalived, which directord does not do (flagged); otherwise nothing is lost."""
    vmacs = [vi.name for vi in k.file.instances if vi.use_vmac]
    for node in k.file.firewall:
        if vmacs:
            k.skip(node, f"not carried over: keepalived uses it to keep IGMP/MLD reports off the VMACs of "
                         f"{', '.join(vmacs)}; directord writes no firewall rules: set "
                         "net.ipv4.igmp_link_local_mcast_reports = 0 (see use_vmac in docs/configuration.md)")
        else:
            k.remark(node, "no effect: directord writes no firewall rules (keepalived uses them for no_accept, "
                           "see vrrp_strict, and for IGMP/MLD on VMACs; Debian's keepalived 2.2.7 uses nftables "
                           "instead anyway)")


def _settle_strict(k: _Keepalived) -> None:
    """vrrp_strict once every instance is read: imported when the instances keep to its rules
    after keepalived's own resets, else left out with the reason."""
    node = k.file.strict
    if node is None:
        return
    unicast = [vi.name for vi in k.file.instances if vi.unicast_peers]
    empty = [vi.name for vi in k.file.instances if not vi.virtual_ips]
    if unicast or empty:
        broken = "unicast peers" if unicast else "no virtual_ipaddress"
        k.skip(node, f"not imported: {', '.join(unicast or empty)} with {broken}, which vrrp_strict forbids; "
                     f"and {NO_ACCEPT}")
        return
    k.config("global")["vrrp_strict"] = True
    k.skip(node, f"imported as vrrp_strict = true (the protocol rules), but {NO_ACCEPT}")


def _strict_instance(k: _Keepalived, vi: _Instance) -> None:
    """keepalived's resets under vrrp_strict (as `keepalived -t` reports them)."""
    if k.file.strict is None:
        return
    if vi.auth_node is not None:
        k.remark(vi.auth_node, "not imported: keepalived ignores authentication under vrrp_strict")
        vi.auth_node = vi.auth_pass_node = vi.auth_type = vi.auth_pass = None
    if vi.preempt_delay_node is not None:
        k.remark(vi.preempt_delay_node, "cleared, as keepalived resets preempt_delay under vrrp_strict")
        vi.preempt_delay, vi.preempt_delay_node = None, None
    if vi.vmac_xmit_base and not vi.unicast_peers:
        assert vi.vmac_node is not None
        k.remark(vi.vmac_node, "vmac_xmit_base cleared, as keepalived resets it under vrrp_strict")
        vi.vmac_xmit_base = None


@GLOBAL.on("vrrp_notify_fifo", "notify_fifo")
def _notify_fifo(k: _Keepalived, node: Node, state: _File) -> None:
    if not node.args:
        k.bad(node, "needs a FIFO path")
        return
    k.config("global")["notify_fifo"] = node.args[0]
    if any(name != "root" for name in node.args[1:]):
        k.skip(node, f"mapped, but the FIFO is root's (mode 0600), not {' '.join(node.args[1:])!r}'s")
    elif node.keyword == "notify_fifo":
        k.skip(node, "mapped, but directord writes VRRP events only to it (no VS or RS lines)")


@GLOBAL.on("vrrp_rt_priority")
def _vrrp_rt_priority(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.integer(node)
    if value is not None:
        k.config("global")["vrrp_realtime_priority"] = value


# keepalived's announcement directives and directord's [vrrp_instance.garp] keys; in
# global_defs each has a vrrp_ prefix and sets the default of every instance
GARP_COUNTS = {"garp_master_repeat": "repeat", "garp_master_refresh_repeat": "refresh_repeat",
               "garp_lower_prio_repeat": "lower_prio_repeat"}
GARP_TIMES = {"garp_interval": "interval", "garp_master_delay": "delay", "garp_master_refresh": "refresh",
              "garp_lower_prio_delay": "lower_prio_delay"}


@GLOBAL.on(*(f"vrrp_{name}" for name in GARP_COUNTS))
def _garp_count_default(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.integer(node)
    if value is not None:
        state.garp[GARP_COUNTS[node.keyword.removeprefix("vrrp_")]] = value


@GLOBAL.on(*(f"vrrp_{name}" for name in GARP_TIMES))
def _garp_time_default(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.duration(node)
    if value is not None:
        state.garp[GARP_TIMES[node.keyword.removeprefix("vrrp_")]] = value


@GLOBAL.on("vrrp_gna_interval")
def _gna_interval(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.duration(node)
    if value is not None:
        state.gna_interval = value, node


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
        sync["instance"] = node.args[1]
        k.file.sync_node = node
    if "sync_daemon" in k.config("ipvs"):
        k.remark(node, "ignored, as keepalived ignores every lvs_sync_daemon after the first")
        return
    k.config("ipvs")["sync_daemon"] = sync


def _settle_sync_instance(k: _Keepalived) -> None:
    sync = k.conv.config.get("ipvs", {}).get("sync_daemon", {})
    name = sync.get("instance")
    if name is not None and k.file.sync_node is not None and name not in {vi.name for vi in k.file.instances}:
        del sync["instance"]
        k.skip(k.file.sync_node, f"names no vrrp_instance of this file ({name}): imported to follow every instance")


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


# --- email alerts (global_defs, vrrp_instance, vrrp_sync_group, virtual_server, real_server) ---------


BOOLEANS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def _switch(k: _Keepalived, node: Node) -> bool | None:
    """keepalived's `smtp_alert [<BOOL>]`: alone it means on."""
    if not node.args:
        return True
    args = k.arg(node)
    value = BOOLEANS.get(args[0].lower()) if args else None
    if args and value is None:
        k.bad(node, f"{args[0]!r} is not one of {', '.join(BOOLEANS)}")
    return value


@GLOBAL.on("smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker")
def _global_smtp_alert(k: _Keepalived, node: Node, state: _File) -> None:
    value = _switch(k, node)
    if value is not None:
        k.config("global")[node.keyword] = value


@GLOBAL.on("notification_email")
def _notification_email(k: _Keepalived, node: Node, state: _File) -> None:
    recipients = []
    for child in k.block(node):
        for address in [child.keyword, *child.args]:
            reason = mail_address(address)
            if reason:
                k.skip(child, f"not imported, directord mails no such recipient: {address!r} {reason}")
            else:
                recipients.append(address)
    k.config("global")["notification_email"] = recipients


@GLOBAL.on("notification_email_from")
def _notification_email_from(k: _Keepalived, node: Node, state: _File) -> None:
    value = " ".join(node.args) if node.args else None  # a display name may be split into words
    reason = mail_address(value) if value else "needs an address"
    if reason:
        k.skip(node, f"not imported, directord sends from its default: {value!r} {reason}" if value else reason)
    else:
        k.config("global")["notification_email_from"] = value


@GLOBAL.on("smtp_server")
def _smtp_server(k: _Keepalived, node: Node, state: _File) -> None:
    """smtp_server HOST [PORT]."""
    if not node.args or len(node.args) > 2:
        k.skip(node, "not imported (so no mail is sent): needs HOST [PORT]")
        return
    host, port = node.args[0], node.args[1] if len(node.args) == 2 else None
    text = host if port is None else (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    try:
        parse_smtp_server(text)
    except ValueError:
        k.remark(node, f"not imported, so no mail is sent, as keepalived rejects it too: {' '.join(node.args)!r} "
                       "is not a host name or address with an optional port")
        return
    k.config("global")["smtp_server"] = text


@GLOBAL.on("smtp_connect_timeout")
def _smtp_connect_timeout(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.duration(node)
    if value is not None:
        k.config("global")["smtp_connect_timeout"] = value


@GLOBAL.on("smtp_helo_name")
def _smtp_helo_name(k: _Keepalived, node: Node, state: _File) -> None:
    value = k.word(node)
    if value is not None:
        k.config("global")["smtp_helo_name"] = value


@INSTANCE.on("smtp_alert")
def _instance_smtp_alert(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.smtp_alert = _switch(k, node)


@VIRTUAL.on("smtp_alert")
def _vs_smtp_alert(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.smtp_alert = _switch(k, node)


@REAL.on("smtp_alert")
def _rs_smtp_alert(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    value = _switch(k, node)
    if value is not None:
        rs.entry["smtp_alert"] = value


def _before_check(service: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The virtual server's table with `own` keys among its own (before the check and real servers)."""
    items = list(service.items())
    at = next((index for index, (key, _) in enumerate(items) if key in ("check", "real_server")), len(items))
    return {**dict(items[:at]), **own, **dict(items[at:])}


# --- vrrp_instance -------------------------------------------------------------------------


INSTANCE.sets("interface", _Keepalived.word, "interface")
INSTANCE.sets("unicast_src", _Keepalived.word, "unicast_src_ip", "mcast_src_ip")  # one setting in keepalived


@GLOBAL.on("vrrp_higher_prio_send_advert")
@INSTANCE.on("higher_prio_send_advert")
def _higher_prio_send_advert(k: _Keepalived, node: Node, vi: object) -> None:
    """A master that hears a higher priority sends one last advert before it steps down: directord
    always does, so the other master (split brain healing) announces again."""
    if node.args and node.args[0].lower() in ("false", "no", "off"):
        k.skip(node, "directord always sends that last advert")
    else:
        k.remark(node, "no effect: directord always sends a last advert before it gives way to a higher priority")
INSTANCE.sets("vrid", _Keepalived.integer, "virtual_router_id")
INSTANCE.sets("version", _Keepalived.integer, "version")
INSTANCE.sets("advert", _Keepalived.number, "advert_int")


@INSTANCE.on("priority")
def _priority(k: _Keepalived, node: Node, vi: _Instance) -> None:
    """keepalived ignores a priority it cannot read (keeping its default), so the import reads on."""
    value = to_int(node.args[0]) if len(node.args) == 1 else None
    if value is None or not 1 <= value <= OWNER_PRIORITY:
        k.remark(node, f"{' '.join(node.args)!r} is not a priority from 1 to 255: ignored, as keepalived "
                       "ignores it, so its default applies (fix it in the source)")
        return
    vi.priority = value


@INSTANCE.on("state")
def _state(k: _Keepalived, node: Node, vi: _Instance) -> None:
    value = k.word(node)
    if value == "MASTER":
        vi.state_node = node
    elif value != "BACKUP" and value is not None:
        k.skip(node, f"{value!r} is not MASTER or BACKUP: keepalived starts such an instance as BACKUP, "
                     "and so does directord")


@INSTANCE.on("dont_track_primary")
def _dont_track_primary(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.track_own_interface = False


@INSTANCE.on("nopreempt")
def _nopreempt(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.preempt, vi.nopreempt_node = False, node


SKIP_CHECK = ("no effect in directord: keepalived skips re-checking the address list of adverts from the "
              "master it checked before, to save time; directord checks every advert, as fast, with the "
              "same outcome")


@INSTANCE.on("skip_check_adv_addr")
def _skip_check_adv_addr(k: _Keepalived, node: Node, vi: _Instance) -> None:
    k.remark(node, SKIP_CHECK)


@INSTANCE.on("preempt_delay")
def _preempt_delay(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.preempt_delay, vi.preempt_delay_node = k.duration(node), node


@INSTANCE.on("virtual_ipaddress", "virtual_ipaddress_excluded")
def _virtual_ipaddress(k: _Keepalived, node: Node, vi: _Instance) -> None:
    """One address a line with `ip addr` options (keepalived_ip.address_entry)."""
    key = "virtual_ips" if node.keyword == "virtual_ipaddress" else "excluded_ips"
    entries: list[str | dict[str, Any]] = []
    for child in k.block(node):
        entry = keepalived_ip.address_entry([child.keyword, *child.args], _line_note(k, node, child),
                                            _line_remark(k, node, child))
        if entry is None:
            k.bad(child, f"{child.keyword!r} is not an address")
            continue
        if isinstance(entry, dict) and "label" in entry:
            vi.labelled.append((node, child, key, len(entries)))
        entries.append(entry)
    setattr(vi, key, entries)


@INSTANCE.on("virtual_routes", "virtual_rules")
def _virtual_routes(k: _Keepalived, node: Node, vi: _Instance) -> None:
    """One route (or rule) a line, read like `ip route|rule add`; one that cannot carry over is noted."""
    read = keepalived_ip.route_entry if node.keyword == "virtual_routes" else keepalived_ip.rule_entry
    entries = []
    for child in k.block(node):
        words = [child.keyword, *child.args]
        entry = read(words, _line_note(k, node, child))
        if node.keyword == "virtual_rules" and not set(words) & set(keepalived_ip.RULE_PRIORITY):
            priority, k.file.rule_priority = k.file.rule_priority, k.file.rule_priority - 1  # every rule counts
            if entry is not None:
                entry["priority"] = priority
                _line_remark(k, node, child)(f"no preference: priority {priority}, the one keepalived gives it")
        if entry is not None:
            entries.append(entry)
    setattr(vi, node.keyword, entries or None)


def _line_note(k: _Keepalived, block: Node, line: Node) -> Callable[[str], None]:
    """Notes about one line of an address/route/rule block, named `BLOCK LINE...`."""
    return lambda reason: k.conv.note(line.file, line.line, " ".join([block.keyword, line.keyword, *line.args]),
                                      reason)


def _line_remark(k: _Keepalived, block: Node, line: Node) -> Callable[[str], None]:
    return lambda reason: k.conv.remark(line.file, line.line, f"{block.keyword} {line.keyword}", reason)


@INSTANCE.on("use_vmac")
def _use_vmac(k: _Keepalived, node: Node, vi: _Instance) -> None:
    """`use_vmac [NAME] [MAC]`: the standard VMAC (00:00:5e:00:01:VRID, IPv6 00:00:5e:00:02:VRID)
    carries over; another MAC does not (directord builds only those)."""
    name, mac = None, None
    for word in node.args:
        if mac is None and _MAC.fullmatch(word):
            mac = word.lower()
        elif name is None and mac is None:
            name = word
        else:
            k.skip(node, f"option {word!r} ignored")
    vi.use_vmac, vi.vmac_interface, vi.vmac_node, vi.vmac_mac = True, name, node, mac


_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){4,5}")


@INSTANCE.on("use_vmac_addr")
def _use_vmac_addr(k: _Keepalived, node: Node, vi: _Instance) -> None:
    k.skip(node, "not imported: directord builds one VMAC per instance, on its interface; the addresses with a "
                 "dev of their own (or of the other family) stay on that device, with its own MAC")


@INSTANCE.on("vmac_xmit_base")
def _vmac_xmit_base(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.vmac_xmit_base = True


def _settle_vmac(k: _Keepalived, vi: _Instance) -> None:
    """What keepalived does with use_vmac once the whole block is read."""
    if not vi.use_vmac:
        vi.vmac_xmit_base = None  # keepalived ignores it without use_vmac
        return
    assert vi.vmac_node is not None
    ipv6 = any(":" in (vip if isinstance(vip, str) else vip["address"]) for vip in vi.virtual_ips or [])
    if vi.vmac_mac is not None:
        octets, family = vi.vmac_mac.split(":"), "02" if ipv6 else "01"
        standard = octets[:5] == ["00", "00", "5e", "00", family] and (
            len(octets) == 5 or vi.vrid is None or int(octets[5], 16) == vi.vrid)
        if not standard:
            k.skip(vi.vmac_node, f"not imported: MAC {vi.vmac_mac}: directord uses the VRRP MAC "
                                 f"00:00:5e:00:{family}:VRID only")
            vi.use_vmac = vi.vmac_interface = vi.vmac_xmit_base = None
            return
    if vi.unicast_peers and not vi.vmac_xmit_base:
        k.remark(vi.vmac_node, "vmac_xmit_base set: keepalived sets it with unicast peers, as it requires")
        vi.vmac_xmit_base = True


@INSTANCE.on("unicast_peer")
def _unicast_peer(k: _Keepalived, node: Node, vi: _Instance) -> None:
    """`ADDRESS [min_ttl N] [max_ttl N]` per line. Without a range keepalived takes a unicast
    advert whatever its TTL, so the import accepts 0..255 too (directord's own default is 255)."""
    peers, ranges = [], set()
    for child in k.block(node):
        address = canonical_ip(child.keyword)
        if address is None:
            k.bad(child, f"{child.keyword!r} is not an address")
            continue
        peers.append(address)
        ranges.add(_ttl_range(k, child))
    vi.unicast_peers = peers
    low, high = min(r[0] for r in ranges) if ranges else 0, max(r[1] for r in ranges) if ranges else 255
    vi.unicast_ttl |= {"unicast_min_ttl": low, "unicast_max_ttl": high}
    if len(ranges) > 1:
        k.skip(node, f"the peers' TTL ranges differ: directord has one per instance, {low}..{high} is used")
    elif (low, high) == (0, 255):
        k.remark(node, "any TTL accepted, as keepalived accepts unicast adverts with no min_ttl/max_ttl; "
                       "narrow it with unicast_min_ttl")


def _ttl_range(k: _Keepalived, child: Node) -> tuple[int, int]:
    words, found = child.args, {"min_ttl": 0, "max_ttl": 255}
    for key, value in zip(words[::2], words[1::2], strict=False):
        number = to_int(value)
        if key in found and number is not None and 0 <= number <= 255:
            found[key] = number
        else:
            k.skip(child, f"option {key} {value!r} ignored")
    if len(words) % 2:
        k.skip(child, f"option {words[-1]!r} ignored")
    return found["min_ttl"], found["max_ttl"]


@INSTANCE.on("unicast_ttl")
def _unicast_ttl(k: _Keepalived, node: Node, vi: _Instance) -> None:
    value = k.integer(node)
    if value is not None:
        vi.unicast_ttl["unicast_ttl"] = value


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
    vi.notify = _hook(k, node)


INSTANCE_HOOKS = ("notify_master", "notify_backup", "notify_fault", "notify_stop")


@INSTANCE.on(*INSTANCE_HOOKS)
def _notify_state(k: _Keepalived, node: Node, vi: _Instance) -> None:
    argv = _hook(k, node)
    if argv is not None:
        vi.hooks[node.keyword] = argv


def _hook(k: _Keepalived, node: Node) -> list[str] | None:
    """keepalived's `SCRIPT [USER [GROUP]]`: the first word is the command (quoted when it
    has arguments of its own), the others whom it runs as."""
    if not node.args:
        k.bad(node, "needs a program")
        return None
    try:
        argv = shlex.split(node.args[0])
    except ValueError as exc:
        k.bad(node, f"cannot split the command: {exc}")
        return None
    if not argv:
        k.bad(node, "needs a program")
        return None
    runs_as = node.args[1:]
    if any(name != "root" for name in runs_as):
        k.skip(node, f"mapped, but run as root: directord runs hooks as root, not as {' '.join(runs_as)!r}")
    elif not runs_as:
        k.file.runs_programs.append(node)  # keepalived runs it as script_user, if one is set
    return argv


@INSTANCE.on(*GARP_COUNTS)
def _garp_count(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.garp[GARP_COUNTS[node.keyword]] = k.integer(node)


@INSTANCE.on(*GARP_TIMES)
def _garp_time(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.garp[GARP_TIMES[node.keyword]] = k.duration(node)


@INSTANCE.on("lvs_sync_daemon_interface")
def _sync_interface(k: _Keepalived, node: Node, vi: _Instance) -> None:
    value = k.word(node)
    if value is not None:
        k.config("ipvs").setdefault("sync_daemon", {})["interface"] = value


@INSTANCE.on("authentication")
def _authentication(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.auth_node = node
    for child in k.block(node):
        AUTH.read(k, child, vi)


@AUTH.on("auth_type")
def _auth_type(k: _Keepalived, node: Node, vi: _Instance) -> None:
    value = k.word(node)
    if value is None:
        return
    vi.auth_type = AUTH_TYPES.get(value)
    if vi.auth_type is None:
        k.remark(node, f"{value!r} is not PASS or AH (keepalived compares case and all): keepalived runs the "
                       "instance without authentication, and so does directord")


@AUTH.on("auth_pass")
def _auth_pass(k: _Keepalived, node: Node, vi: _Instance) -> None:
    vi.auth_pass, vi.auth_pass_node = (k.word(node) if node.args else None), node


@INSTANCE.on_prefix("notify_")
def _notify_other(k: _Keepalived, node: Node, vi: _Instance) -> None:
    k.skip(node, "directord has no such hook: notify runs on master, backup, fault and stop")


def _addresses(k: _Keepalived, node: Node, prefix: bool) -> list[str]:
    """Entries of a unicast_peer block, one address a line."""
    result = []
    for child in k.block(node):
        text = with_prefix(child.keyword) if prefix else canonical_ip(child.keyword)
        if text is None:
            k.bad(child, f"{child.keyword!r} is not an address")
            continue
        result.append(text)
        if child.args:
            k.conv.note(child.file, child.line, f"{node.keyword} {child.keyword}",
                        f"options {' '.join(child.args)!r} ignored")
    return result


GROUP_HOOKS = ("notify", "notify_master", "notify_backup", "notify_fault")


def _sync_group(k: _Keepalived, node: Node) -> None:
    instances = {vi.name: vi for vi in k.file.instances}
    name = node.args[0] if node.args else f"group_{node.line}"
    members: list[_Instance] = []
    tracking: list[Node] = []
    hooks: dict[str, Any] = {}
    for child in k.block(node):
        if child.keyword in ("track_script", "track_file", "track_process", "sync_group_tracking_weight"):
            tracking.append(child)
            continue
        if child.keyword in GROUP_HOOKS:
            argv = _hook(k, child)
            if argv is not None:
                hooks[child.keyword] = argv
            continue
        if child.keyword == "smtp_alert":
            switch = _switch(k, child)
            if switch is not None:
                hooks["smtp_alert"] = switch
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
    if hooks and any(vi.sync_group == name for vi in instances.values()):
        arguments = {"notify_arguments": "keepalived"} if "notify" in hooks else {}  # a table for a switch alone too
        k.conv.config.setdefault("vrrp_sync_group", []).append({"name": name, **hooks, **arguments})
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
        ipv6 = any(":" in (vip if isinstance(vip, str) else vip["address"]) for vip in vi.virtual_ips or [])
        vi.version = k.file.version or (3 if ipv6 else 2)
    for block, line, key, index in vi.labelled:
        entries = getattr(vi, key)
        entries[index] = keepalived_ip.settle_label(entries[index], vi.interface, _line_note(k, block, line))
    _settle_start(k, vi)
    if vi.unicast_ttl and not vi.unicast_peers:
        vi.unicast_ttl = {}  # a multicast instance: its adverts carry TTL 255 in keepalived too
    _strict_instance(k, vi)
    _settle_auth(k, vi)
    _settle_vmac(k, vi)
    if vi.preempt_delay_node is not None and vi.preempt is False:
        vi.preempt_delay = None
        k.skip(vi.preempt_delay_node, "has no effect with nopreempt")
    tracked = k.file.tracked
    group = (k, vi.sync_group) if vi.sync_group and not vi.keeps_tracking_weights else None
    return vi.output({**k.file.garp, **_gna(k, vi), **vi.garp}) | present({
        "track_scripts": keepalived_tracking.output(vi.track_scripts, tracked.scripts, 0, group),
        "track_files": keepalived_tracking.output(vi.track_files, tracked.files, 1, group),
        "track_processes": keepalived_tracking.output(vi.track_processes, tracked.processes, 1, group)})


def _gna(k: _Keepalived, vi: _Instance) -> dict[str, Any]:
    """vrrp_gna_interval spaces an IPv6 instance's announcements (neighbour advertisements),
    where vrrp_garp_interval spaces an IPv4 instance's ARPs."""
    if k.file.gna_interval is None:
        return {}
    value, node = k.file.gna_interval
    if any(":" in vip for vip in vi.virtual_ips or []):
        return {"interval": value}
    k.remark(node, f"no effect on vrrp_instance {vi.name}: it announces IPv4 addresses by ARP")
    return {}


def _settle_start(k: _Keepalived, vi: _Instance) -> None:
    """keepalived's rules for `state MASTER`: it makes 255 the default priority and clears
    nopreempt and preempt_delay; only an instance of priority 255 becomes master at once,
    as directord's does. An owner (255) always preempts."""
    if vi.state_node is not None:
        if vi.priority is None:
            vi.priority = OWNER_PRIORITY
            k.remark(vi.state_node, "MASTER with no priority: priority 255, keepalived's default for it")
        elif vi.priority != OWNER_PRIORITY:
            k.remark(vi.state_node, "MASTER below priority 255: the instance waits for an advert like a "
                                    "backup before it takes over, in keepalived and in directord alike")
    owner = (vi.priority or DEFAULT_PRIORITY) == OWNER_PRIORITY
    if vi.nopreempt_node is not None and (vi.state_node is not None or owner):
        vi.preempt = None
        why = "state MASTER" if vi.state_node is not None else "priority 255"
        k.remark(vi.nopreempt_node, f"cleared, as keepalived clears it with {why}: the instance preempts")
    if vi.preempt_delay_node is not None and vi.state_node is not None:
        vi.preempt_delay, vi.preempt_delay_node = None, None
        k.remark(vi.state_node, "preempt_delay cleared, as keepalived clears it with state MASTER")


def _settle_auth(k: _Keepalived, vi: _Instance) -> None:
    """keepalived's rules for the authentication block, once the version is known: version 3
    (or IPv6, which is version 3) and a missing password make it run without authentication,
    as directord then does; only AH over unicast has no equivalent."""
    if vi.auth_node is None:
        return
    why = ""
    if vi.auth_type is None:
        pass  # an unknown auth_type, remarked already, or none at all: nothing to authenticate with
    elif vi.version == 3:
        why = ("VRRP version 3 has no authentication: keepalived ignores the block (\"VRRP version 3 does not "
               "support authentication. Ignoring.\"), and so does directord")
    elif not vi.auth_pass:
        why = ("no auth_pass: keepalived ignores the block (\"Authentication specified but no password given\"), "
               "and so does directord")
    elif vi.auth_type == "ah" and vi.unicast_peers:
        k.skip(vi.auth_node, "directord does AH over multicast only: imported without authentication, so this "
                             "node and a keepalived peer that keeps AH ignore each other; use PASS on both")
        vi.auth_type = None
    elif vi.auth_pass_node is not None and len(vi.auth_pass.encode()) > AUTH_PASS_BYTES:
        k.remark(vi.auth_pass_node, f"longer than {AUTH_PASS_BYTES} bytes: keepalived uses the first "
                                    f"{AUTH_PASS_BYTES} (\"Truncating auth_pass\"), and so does directord")
    if why:
        k.remark(vi.auth_node, why)
    if vi.auth_type is None or why:
        vi.auth_type = vi.auth_pass = None


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
    if len(args) > 2 and canonical_ip(args[0]) and to_int(args[1]) is not None:
        k.remark(node, f"{' '.join(args[2:])!r} after ADDRESS PORT ignored, as keepalived ignores it")
        args = args[:2]
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


# the kernel has three scheduler flag bits; keepalived names them after the scheduler that reads them
FLAG_SLOTS = {"flag-1": 1, "sh-fallback": 1, "mh-fallback": 1, "flag-2": 2, "sh-port": 2, "mh-port": 2, "flag-3": 3}


@VIRTUAL.on(*FLAG_SLOTS)
def _scheduler_flag(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.flags[FLAG_SLOTS[node.keyword]] = node


def _settle_flags(k: _Keepalived, vs: _VirtualServer) -> None:
    """Each flag by the name directord gives it for the service's scheduler; one that
    scheduler does not read is dropped, as the kernel ignores it."""
    scheduler = vs.service.scheduler or "wlc"
    names = []
    for slot, node in sorted(vs.flags.items()):
        name = next((flag for flag, known in SCHEDULER_FLAGS.items()
                     if known.scheduler == scheduler and known.slot == slot), None)
        if name is None:
            k.remark(node, f"dropped: the {scheduler} scheduler reads no flag {slot}, so the kernel ignores it")
        else:
            names.append(name)
    vs.service.scheduler_flags = names or None


@VIRTUAL.on("quorum_up", "quorum_down")
def _quorum_hook(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    argv = _hook(k, node)
    if argv is not None:
        vs.hooks[node.keyword] = argv


@VIRTUAL.on("omega")
def _omega(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    vs.hooks["omega"] = True


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
    if not node.args:
        vs.service.persistence_timeout = seconds(DEFAULT_PERSISTENCE)
        k.remark(node, "no value: 360 s, keepalived's default")
        return
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


@VIRTUAL.on("hysteresis")
def _hysteresis(k: _Keepalived, node: Node, vs: _VirtualServer) -> None:
    value = k.integer(node)
    if value is not None:
        vs.hooks["hysteresis"] = value


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


@REAL.on("virtualhost")
def _rs_virtualhost(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    rs.virtualhost = k.word(node)


@REAL.on("inhibit_on_failure")
def _rs_inhibit(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    rs.inhibit = True


@REAL.on(*CHECK_TYPES)
def _checker(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    check = _Check(CHECK_TYPES[node.keyword], replace(rs.timing), node=node, rs_port=rs.entry["port"] or 0)
    table = CHECK_TABLES[check.type]
    for child in k.block(node):
        table.read(k, child, check)
    if check.type in ("http", "https"):
        _settle_urls(check)
    if check.type == "exec" and check.timing.timeout is None:
        interval = check.timing.interval
        check.timing.timeout = interval if interval is not None else seconds(DEFAULT_DELAY_LOOP)
    if check.type == "udp":
        _udp_defaults(k, node, check)
    rs.checks.append(check)


REAL.says("this check type is not supported: the real server is never checked", *OTHER_CHECKERS)


@REAL.on("notify_up", "notify_down")
def _rs_notify(k: _Keepalived, node: Node, rs: _RealServer) -> None:
    argv = _hook(k, node)
    if argv is not None:
        rs.entry[node.keyword] = argv


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


@TCP_CHECK.on("connect_ip", "bindto")
def _check_address(k: _Keepalived, node: Node, check: _Check) -> None:
    value = canonical_ip(node.args[0]) if node.args else None
    if value is None:
        k.bad(node, "needs an IP address")
    elif node.keyword == "connect_ip":
        check.address = value
    else:
        check.bind_address = value


@TCP_CHECK.on("bind_if")
def _bind_if(k: _Keepalived, node: Node, check: _Check) -> None:
    check.bind_interface = k.word(node)


@HTTP_CHECK.on("url")
def _url(k: _Keepalived, node: Node, check: _Check) -> None:
    url: dict[str, Any] = {}
    for child in k.block(node):
        URL.read(k, child, url)
    check.url_list.append(url)


def _settle_urls(check: _Check) -> None:
    """keepalived checks every url block, each with status 200-299 unless it says otherwise: one
    becomes the check's own keys, several its `urls` (all must pass, as in keepalived)."""
    for url in check.url_list:
        url["expect_status"] = url.get("expect_status") or ["200-299"]
    if len(check.url_list) == 1:
        [url] = check.url_list
        check.url_list = []
        check.path, check.expect_status = url.get("path"), url["expect_status"]
        check.expect_body, check.regex_no_match = url.get("expect_body"), url.get("regex_no_match")
        check.digest, check.host = url.get("digest"), url.get("host", check.host)
    elif check.expect_status is None and not check.url_list:
        check.expect_status = ["200-299"]


@HTTP_CHECK.on("http_protocol")
def _http_protocol(k: _Keepalived, node: Node, check: _Check) -> None:
    """1.0C is 1.0 with "Connection: close", which directord sends with either version."""
    value = k.word(node)
    if value in ("1.0", "1.0C", "1.0c"):
        check.http_version = "1.0"
    elif value is not None and value != "1.1":
        k.bad(node, f"{value!r} is not 1.0, 1.0C or 1.1")


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
        k.remark(node, f"run as argv {argv!r}, without a shell, as keepalived 2 runs it")


@MISC_CHECK.on("misc_timeout")
def _misc_timeout(k: _Keepalived, node: Node, check: _Check) -> None:
    check.timing.timeout = k.duration(node)


@MISC_CHECK.on("misc_dynamic")
def _misc_dynamic(k: _Keepalived, node: Node, check: _Check) -> None:
    check.dynamic_weight = True


# --- DNS_CHECK, UDP_CHECK, SMTP_CHECK (PING_CHECK has only timing and connect_port) (issue 19) ---


@DNS_CHECK.on("type")
def _dns_type(k: _Keepalived, node: Node, check: _Check) -> None:
    value = k.word(node)
    if value is not None:
        check.extra["query_type"] = value.upper()  # keepalived takes any case; the loader judges the name


@DNS_CHECK.on("name")
def _dns_name(k: _Keepalived, node: Node, check: _Check) -> None:
    value = k.word(node)
    if value is not None:
        check.extra["query_name"] = value


@SMTP_CHECK.on("helo_name")
def _helo_name(k: _Keepalived, node: Node, check: _Check) -> None:
    value = k.word(node)
    if value is not None:
        check.extra["helo_name"] = value


@SMTP_CHECK.on("host")
def _smtp_host(k: _Keepalived, node: Node, check: _Check) -> None:
    k.skip(node, "the old SMTP_CHECK host { } block (several hosts per check) is not supported: "
                 "the real server itself is checked")


@UDP_CHECK.on("payload")
def _payload(k: _Keepalived, node: Node, check: _Check) -> None:
    data = _hex_bytes(" ".join(node.args))
    if data is None or not data:
        k.bad(node, f"{' '.join(node.args)!r} is not a hex string")
    elif max(data) > 0x7F:
        k.skip(node, "a payload with bytes above 0x7f: directord's send is text (UTF-8), so it is not imported")
    else:
        check.extra["send"] = data.decode("ascii")


@UDP_CHECK.on("require_reply")
def _require_reply(k: _Keepalived, node: Node, check: _Check) -> None:
    check.extra["require_reply"] = True
    if node.args:
        k.skip(node, "the reply's expected bytes are not imported: any reply passes (use expect, a regex)")


@UDP_CHECK.on("min_reply_length", "max_reply_length")
def _reply_length(k: _Keepalived, node: Node, check: _Check) -> None:
    k.skip(node, "reply length bounds are not supported (use expect, a regex)")


def _udp_defaults(k: _Keepalived, node: Node, check: _Check) -> None:
    """keepalived's UDP_CHECK passes on silence unless require_reply, and sends random bytes
    without a payload; directord sends an empty datagram then."""
    check.extra.setdefault("require_reply", False)
    if "send" not in check.extra and not any(c.keyword == "payload" for c in node.children or []):
        k.remark(node, "no payload: keepalived sends random bytes, directord an empty datagram")


def _hex_bytes(text: str) -> bytes | None:
    """keepalived's free-form hex: digits in pairs, a lone digit before a space stands alone ("3" is 03)."""
    out = bytearray()
    for word in text.split():
        if not re.fullmatch(r"[0-9A-Fa-f]+", word):
            return None
        if len(word) % 2:
            word = word[:-1] + "0" + word[-1]
        out += bytes.fromhex(word)
    return bytes(out)


@URL.on("path", "regex", "digest", "virtualhost")
def _url_word(k: _Keepalived, node: Node, url: dict[str, Any]) -> None:
    value = k.word(node)
    if value is not None:
        key = {"regex": "expect_body", "virtualhost": "host"}.get(node.keyword, node.keyword)
        url[key] = value.lower() if key == "digest" else value


@URL.on("status_code")
def _status_code(k: _Keepalived, node: Node, url: dict[str, Any]) -> None:
    # a code is three digits; anything else ("200-299", "²", 5000 digits) as written, for the loader to judge
    url["expect_status"] = [int(a) if len(a) == 3 and a.isascii() and a.isdigit() else a for a in node.args]


@URL.on("regex_no_match")
def _regex_no_match(k: _Keepalived, node: Node, url: dict[str, Any]) -> None:
    url["regex_no_match"] = True


# --- the end of a virtual_server block --------------------------------------------------------


def _finish_vs(k: _Keepalived, vs: _VirtualServer) -> dict[str, Any]:
    """Settle defaults and choose the service's check and failure mode from its real servers."""
    service, node = vs.service, vs.node
    if service.protocol is None and not service.fwmark:
        service.protocol = "udp"
        k.skip(node, "no protocol line: keepalived (2.2.7, checked against the kernel table) then creates a "
               "UDP service, so udp is imported; add \"protocol TCP\" to the source if TCP was meant")
    service.take_name(k.names)
    _settle_flags(k, vs)
    service.method = service.method or "nat"
    if not service.persistence_timeout and service.persistence_netmask is not None:
        service.persistence_netmask = None
        k.conv.remark(node.file, node.line, "persistence_granularity",
                      "not imported: without persistence the kernel ignores it, under keepalived too")
    if service.fwmark and any(":" in rs.entry["address"] for rs in vs.real_servers):
        service.family = "ipv6"
    _dr_ports(k, vs)
    service.check = _place_checks(k, vs)
    service.on_failure = _on_failure(k, vs)
    service.real_server = [rs.entry for rs in vs.real_servers]
    own = vs.hooks | ({"smtp_alert": vs.smtp_alert} if vs.smtp_alert is not None else {})
    return _before_check(service.output(), own)


def _dr_ports(k: _Keepalived, vs: _VirtualServer) -> None:
    """A DR (or TUN) packet keeps its destination port, so IPVS ignores a real server's own
    port: keepalived accepts one that differs, directord's config refuses it, so it is
    imported as the service's port."""
    port = vs.service.port
    for rs in vs.real_servers:
        method = rs.entry.get("method") or vs.service.method
        if method in ("dr", "tun") and port and rs.entry["port"] != port:
            k.remark(rs.node, f"port {rs.entry['port']} imported as {port}: with {method.upper()} the kernel "
                              "sends the packets to the service's port whatever the real server's says")
            rs.entry["port"] = port


def _place_checks(k: _Keepalived, vs: _VirtualServer) -> dict[str, Any] | None:
    """The service's check when every real server runs the same single checker, a real server
    whose check differs only by its Host header (a url's, the checker's or its real_server's
    virtualhost) keeping that as its own `virtualhost`; otherwise each real server keeps its own
    checkers (all must pass) and the service has none."""
    lists = [[_hostless(check) for check in rs.checks] for rs in vs.real_servers]
    named = {_host(rs, vs) is not None for rs in vs.real_servers if rs.check.type in ("http", "https")}
    if all(len(checks) <= 1 and checks == lists[0] for checks in lists) and len(named) <= 1:
        if not lists or not lists[0]:
            return {"type": "none"}
        first = vs.real_servers[0]
        chosen = _with_host(first.check, first, vs)
        for rs in vs.real_servers[1:]:
            host = _host(rs, vs)
            if rs.check.type in ("http", "https") and host is not None and host != chosen.host:
                rs.entry["virtualhost"] = host
        return _completed(k, vs, chosen, vs.real_servers) or {"type": "none"}
    for rs in vs.real_servers:
        own = [_completed(k, vs, _with_host(check, rs, vs), [rs]) for check in rs.checks]
        if any(own):
            rs.entry["checks"] = [done for done in own if done is not None]
    return None


def _hostless(check: _Check) -> _Check:
    return replace(check, host=None) if check.type in ("http", "https") else check


def _with_host(check: _Check, rs: _RealServer, vs: _VirtualServer) -> _Check:
    return replace(check, host=check.host or rs.virtualhost or vs.virtualhost) if check.type in ("http", "https") \
        else check


def _host(rs: _RealServer, vs: _VirtualServer) -> str | None:
    """keepalived's Host for a real server's check: the url's (or checker's), its own, the service's."""
    return rs.check.host or rs.virtualhost or vs.virtualhost


def _completed(k: _Keepalived, vs: _VirtualServer, chosen: _Check, servers: list[_RealServer]) -> dict[str, Any] | None:
    """A checker completed with keepalived's defaults, as a directord check; None: nothing to check."""
    check = replace(chosen, timing=replace(chosen.timing))
    if check.type == "none":
        return None
    timing = check.timing
    timing.interval = timing.interval if timing.interval is not None else seconds(DEFAULT_DELAY_LOOP)
    if check.type != "exec" and timing.timeout is None:
        timing.timeout = seconds(DEFAULT_CONNECT_TIMEOUT)
    timing.fall = timing.fall if timing.fall is not None else DEFAULT_RETRIES.get(check.type, DEFAULT_RETRY) + 1
    check.rise, check.initial = 1, vs.initial
    if vs.virtualhost and check.type in ("http", "https") and check.host is None:
        check.host = vs.virtualhost
    if check.type not in ("exec", "ping") and check.port is None and any(rs.entry["port"] == 0 for rs in servers):
        if not vs.service.port:
            k.skip(check.node or vs.node, "real servers with port 0 and no connect_port: nothing to check, "
                                          "check type none")
            return None
        check.port = vs.service.port
    return check.output()


def _on_failure(k: _Keepalived, vs: _VirtualServer) -> str:
    flags = [rs.inhibit for rs in vs.real_servers]
    if flags and any(flags) and not all(flags):
        node = vs.real_servers[flags.index(not flags[0])].node
        k.conv.note(node.file, node.line, "inhibit_on_failure",
                    "set on some real servers only; directord uses the first real server's choice for all")
    return "quiesce" if flags and flags[0] else "remove"


def convert(path: str) -> Conversion:
    """Read keepalived.conf at PATH (and its includes) into a directord config."""
    return convert_braced(path, _Keepalived)
