"""The configuration model: what a user writes in directord.toml, validated.

Every section is a frozen dataclass so that reloads can compare old and new
config by equality and apply only the difference. It is the one source of
defaults (the field defaults) and choices (the Literal types): the loader reads
both from here through `field_default` and `field_choices`. Loading lives in
`director.config.load`; this module has no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import socket
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args, get_origin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The choices a user may write. The loader offers exactly these (typing.get_args), the IPVS
# layer takes its names from here, so adding a choice is one edit in this module.
Scheduler = Literal["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]
Method = Literal["nat", "dr", "tun"]
Protocol = Literal["tcp", "udp", "sctp"]
CheckType = Literal["tcp", "http", "https", "sip", "exec", "none", "dns", "udp", "ping", "smtp",
                    "mysql", "pgsql", "ldap", "imap", "imaps", "pop", "pops", "ftp", "radius"]
TunnelType = Literal["ipip", "gue", "gre"]
TunnelChecksum = Literal["nocsum", "csum", "remcsum"]
HttpMethod = Literal["GET", "HEAD", "POST", "OPTIONS"]
# dns checks: the query's record type and class, and the response codes (RFC 1035, 2136, 6895 names)
DnsType = Literal["A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "ANY"]
DnsClass = Literal["IN", "CH"]
DnsRcode = Literal["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                   "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
LogFacility = Literal["daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]

SCHEDULERS: tuple[Scheduler, ...] = get_args(Scheduler)
METHODS: tuple[Method, ...] = get_args(Method)
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
CHECK_TYPES: tuple[CheckType, ...] = get_args(CheckType)
TUNNEL_TYPES: tuple[TunnelType, ...] = get_args(TunnelType)
HTTP_METHODS: tuple[HttpMethod, ...] = get_args(HttpMethod)


class SchedulerFlag(NamedTuple):
    scheduler: Scheduler  # the one scheduler that reads the flag
    slot: int  # which of the kernel's IP_VS_SVC_F_SCHED1..3 bits it is


# Scheduler flags the kernel understands. The IPVS layer derives the flag bits from the slots.
SCHEDULER_FLAGS: dict[str, SchedulerFlag] = {
    "sh-fallback": SchedulerFlag("sh", 1),
    "sh-port": SchedulerFlag("sh", 2),
    "mh-fallback": SchedulerFlag("mh", 1),
    "mh-port": SchedulerFlag("mh", 2),
}

# Check options and the check types they apply to (the loader refuses them elsewhere).
# Check types whose probes open a socket, so may choose its source (bind_address, bind_interface).
# (Not ping: one ICMP socket serves every ping check.)
SOCKET_CHECK_TYPES: tuple[CheckType, ...] = tuple(kind for kind in CHECK_TYPES if kind not in ("exec", "none", "ping"))
CHECK_OPTION_TYPES: dict[str, tuple[CheckType, ...]] = {
    "send": ("tcp",),
    "expect": ("tcp",),
    "method": ("http", "https"),
    "path": ("http", "https"),
    "host": ("http", "https"),
    "expect_body": ("http", "https"),
    "max_body": ("http", "https"),
    "tls_verify": ("https",),
    "sni": ("https",),
    # HTTP depth (director.config.http_keys)
    "headers": ("http", "https"),
    "http_version": ("http", "https"),
    "http_user": ("http", "https"),
    "http_password": ("http", "https"),
    "digest": ("http", "https"),
    "regex_no_match": ("http", "https"),
    "urls": ("http", "https"),
    "tls_cert": ("https",),
    "tls_key": ("https",),
    "tls_ca": ("https",),
    "expect_status": ("http", "https", "sip"),
    "transport": ("sip",),
    "sip_uri": ("sip",),
    "command": ("exec",),
    "dynamic_weight": ("exec",),
    "bind_address": SOCKET_CHECK_TYPES,
    "bind_interface": SOCKET_CHECK_TYPES,
    # the login checks (ldirectord's service= checks; issue 19)
    "login": ("mysql", "pgsql", "ldap", "imap", "imaps", "pop", "pops", "ftp", "radius"),
    "passwd": ("mysql", "pgsql", "ldap", "imap", "imaps", "pop", "pops", "ftp", "radius"),
    "passwd_file": ("mysql", "pgsql", "ldap", "imap", "imaps", "pop", "pops", "ftp", "radius"),
    "database": ("mysql", "pgsql"),
    "request": ("mysql", "pgsql", "ldap", "ftp"),
    "receive": ("mysql", "pgsql", "ldap", "ftp"),
    "secret": ("radius",),
    "secret_file": ("radius",),
}
# dns, udp, smtp (issue 19): added here, not in the table above, so other types' edits merge cleanly
for _option, _types in {
    "send": ("udp",), "expect": ("udp", "dns"), "require_reply": ("udp",), "transport": ("dns",),
    "query_name": ("dns",), "query_type": ("dns",), "query_class": ("dns",), "expect_rcode": ("dns",),
    "helo_name": ("smtp",),
}.items():
    CHECK_OPTION_TYPES[_option] = CHECK_OPTION_TYPES.get(_option, ()) + _types
# Check types that connect to a port (the real server's, or the check's own `port`).
PORT_CHECK_TYPES: tuple[CheckType, ...] = ("tcp", "http", "https", "sip")
PORT_CHECK_TYPES += ("mysql", "pgsql", "ldap", "imap", "imaps", "pop", "pops", "ftp", "radius")
PORT_CHECK_TYPES += ("dns", "udp", "smtp")  # ping has no port (issue 19)


def field_default(model: type, name: str) -> Any:
    """The default of one field (a fresh one for factories); dataclasses.MISSING if required.

    Read from the field each time, so the loader can never hold a stale copy.
    """
    spec = _fields(model)[name]
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def field_choices(model: type, name: str) -> tuple[Any, ...]:
    """The Literal values a field allows (inside Optional or tuple[...] too); () if it is free."""
    return _literal_values(_hints(model)[name])


@functools.cache
def _fields(model: type) -> dict[str, dataclasses.Field[Any]]:
    return {spec.name: spec for spec in dataclasses.fields(model)}


@functools.cache
def _hints(model: type) -> dict[str, Any]:
    return typing.get_type_hints(model)


def _literal_values(hint: Any) -> tuple[Any, ...]:
    origin = get_origin(hint)
    if origin is Literal:
        return get_args(hint)
    if origin in (typing.Union, types.UnionType, tuple):
        return tuple(value for arg in get_args(hint) for value in _literal_values(arg))
    return ()


@dataclass(frozen=True)
class GlobalConfig:
    router_id: str = field(default_factory=socket.gethostname)  # default: this host's name
    control_socket: str = "/run/directord/control.sock"
    state_dir: str = "/var/lib/directord"
    metrics_listen: str = "127.0.0.1:9612"  # "" disables
    reconcile_interval: float = 5.0
    audit_period: float = 60.0  # every owned IPVS service is re-read and compared within this
    log_level: LogLevel = "info"
    log_format: LogFormat = "text"  # "json": one JSON object per line
    log_file: str = ""  # also append every line here (reopened after logrotate); "": none
    log_facility: LogFacility | None = None  # also send every line to syslog with this facility
    # SCHED_RR priority of the VRRP process (adverts leave on time on a loaded box); 0: normal
    vrrp_realtime_priority: int = 1
    notify_fifo: str = ""  # a FIFO each VRRP state change is written to as a line; "": none
    # refuse a config that runs, as root, a program a user other than root can change
    # (keepalived's enable_script_security); false: check-config only warns
    script_security: bool = False
    auto_reload: bool = False  # reload when the config file changes (ldirectord's autoreload)
    # keepalived's vrrp_strict: refuse what RFC 5798 does not allow (authentication, unicast peers,
    # preempt_delay, vmac_xmit_base, an instance with no VIP); see load._strict_problems
    vrrp_strict: bool = False
    # --- email alerts (keepalived's names); no mail unless both recipients and a server are set
    notification_email: tuple[str, ...] = ()  # recipients
    notification_email_from: str | None = None  # None: directord@<host name>
    smtp_server: SmtpServer | None = None
    smtp_connect_timeout: float = 30.0  # seconds for one whole SMTP exchange (keepalived's default)
    smtp_helo_name: str | None = None  # None: this host's name
    smtp_alert: bool | None = None  # default of every switch below and of every smtp_alert; None: unset
    smtp_alert_vrrp: bool | None = None  # default of vrrp_instance and vrrp_sync_group smtp_alert
    smtp_alert_checker: bool | None = None  # default of virtual_server and real_server smtp_alert


class SmtpServer(NamedTuple):
    """Where alert mail goes: a host name or address, and a port."""

    host: str
    port: int = 25


# What an smtp_alert left unset everywhere means, by what it is about: keepalived's choice, so
# that an imported config mails what it mailed (real-server changes yes, the rest only when asked).
SMTP_ALERT_FALLBACK: dict[str, bool] = {"vrrp": False, "virtual_server": False, "real_server": True}


# Room for one connection in a sync packet. The kernel sends its sync buffer when the next
# message does not fit or after about 2 s, so with MTU-sized buffers the newest few dozen
# connections can be unknown to the backup for seconds; with room for one, each leaves as soon as
# the next connection changes state (plus the kernel's 20 ms send delay).
SYNC_PACKET_ONE_CONNECTION = 64


@dataclass(frozen=True)
class SyncDaemonConfig:
    """IPVS connection-sync daemon; its role (master/backup) follows VRRP."""

    interface: str
    syncid: int = 0
    mcast_group: IPAddress | None = None
    mcast_port: int = 8848
    mcast_ttl: int = 1
    max_packet_size: int = SYNC_PACKET_ONE_CONNECTION  # master thread; 0: the kernel's MTU-sized packets
    instance: str | None = None  # master while this VRRP instance is; None: while any is


@dataclass(frozen=True)
class IpvsConfig:
    # Seconds; None leaves the kernel value alone.
    timeout_tcp: float | None = None
    timeout_tcpfin: float | None = None
    timeout_udp: float | None = None
    sync_daemon: SyncDaemonConfig | None = None
    # net.ipv4.vs.* sysctls; None leaves the kernel value alone.
    expire_nodest_conn: bool | None = None
    expire_quiescent_template: bool | None = None
    conntrack: bool | None = None
    # What a stopping daemon does to the table: "keep" it (a restart drops nothing) or
    # "remove" the services it owns and its sync thread (never entries made by others).
    on_stop: Literal["keep", "remove"] = "keep"


@dataclass(frozen=True)
class CheckConfig:
    """How one virtual server checks each of its real servers."""

    type: CheckType = "none"
    interval: float = 2.0
    timeout: float = 1.0
    rise: int = 2
    fall: int = 3
    # State assumed before the first verdict (warm-up): "down" keeps the server
    # out until it has passed `rise` checks; "up" puts it in at once.
    initial: Literal["up", "down"] = "down"
    # Interval used while a target is between states (rising or falling);
    # None: same as `interval`.
    transition_interval: float | None = None
    # Fraction of the interval over which first probes are spread (0..1).
    jitter: float = 0.5
    port: int | None = None  # probe this port instead of the real server's
    address: IPAddress | None = None  # probe this address instead of the real server's (keepalived connect_ip)
    bind_address: IPAddress | None = None  # the probe's source address, on multi-homed directors
    bind_interface: str | None = None  # the probe leaves by this link (needed for an IPv6 link-local source)
    # tcp: optional send/expect
    send: bytes | None = None
    expect: str | None = None  # regex searched in the reply
    # http / https
    method: HttpMethod = "GET"
    path: str = "/"
    host: str | None = None  # Host header; default: the real server address
    expect_status: tuple[tuple[int, int], ...] = ((200, 200),)  # inclusive ranges
    expect_body: str | None = None  # regex searched in the body
    max_body: int = 65536  # bytes read at most
    tls_verify: bool | None = None  # None: not set, so not verified (check-config warns)
    sni: str | None = None
    # http / https depth (keepalived's HTTP_GET url blocks; director.config.http_keys reads them)
    headers: tuple[tuple[str, str], ...] = ()  # more request headers, in order
    http_version: Literal["1.1", "1.0"] = "1.1"
    http_user: str | None = None  # basic authentication; None: none
    http_password: str = ""
    digest: str | None = None  # MD5 of the body, 32 lower-case hex digits (keepalived's digest)
    regex_no_match: bool = False  # expect_body must NOT match
    urls: tuple[HttpUrl, ...] = ()  # several URLs, all must pass; (): the one of path / expect_* above
    tls_cert: str | None = None  # client certificate (PEM file), for servers that ask for one
    tls_key: str | None = None  # its private key; None: in tls_cert
    tls_ca: str | None = None  # CA file the server is verified against (tls_verify); None: the system's
    # sip
    transport: Literal["udp", "tcp"] = "udp"
    sip_uri: str | None = None  # Request-URI; default sip:<address>:<port>
    # exec: argv, never a shell string
    command: tuple[str, ...] = ()
    dynamic_weight: bool = False  # exit 2..255 -> weight = code - 2
    # the login checks (mysql, pgsql, ldap, imap, pop, ftp, radius)
    login: str | None = None  # user name (ldap: bind DN); None: no login, the greeting only
    passwd: str | None = field(default=None, repr=False)  # inline (check-config warns when others can read the file)
    passwd_file: str | None = None  # or: its first line is the password, re-read when it changes
    database: str | None = None  # mysql, pgsql: the database to log in to
    request: str | None = None  # mysql, pgsql: a query that must return a row; ldap: a DN to read; ftp: a file
    receive: str | None = None  # regex the query's rows (ldap: the entry) must match
    secret: str | None = field(default=None, repr=False)  # radius: the shared secret
    secret_file: str | None = None  # radius: or its first line

    # udp: `send` is the datagram; `expect` a regex searched in the reply
    require_reply: bool = True  # false: up unless an ICMP error comes back (keepalived's UDP_CHECK)
    # dns: one query; `transport` "udp" falls back to TCP on a truncated reply
    query_name: str = "."
    query_type: DnsType = "SOA"  # keepalived DNS_CHECK's defaults: SOA of the root
    query_class: DnsClass = "IN"
    expect_rcode: DnsRcode = "NOERROR"
    # smtp
    helo_name: str | None = None  # EHLO/HELO argument; None: this host's name

@dataclass(frozen=True)
class HttpUrl:
    """One URL of an http/https check, with its own expectations (keepalived's url block)."""

    path: str = "/"
    expect_status: tuple[tuple[int, int], ...] = ((200, 200),)
    expect_body: str | None = None
    regex_no_match: bool = False
    digest: str | None = None
    host: str | None = None  # Host header for this URL; None: the check's


@dataclass(frozen=True)
class RealServerConfig:
    address: IPAddress
    port: int  # 0 for fwmark services that keep the client's port
    weight: int = 1
    method: Method | None = None  # None: the service's method
    upper_threshold: int = 0  # 0: no limit
    lower_threshold: int = 0
    tunnel_type: TunnelType = "ipip"
    tunnel_port: int = 0
    tunnel_checksum: TunnelChecksum = "nocsum"
    smtp_alert: bool | None = None  # mail its up/down changes; None: [global] smtp_alert_checker, smtp_alert
    # its own checks, replacing the service's; with several, it is up only while all pass
    checks: tuple[CheckConfig, ...] = ()
    notify_up: tuple[str, ...] = ()  # argv run when its checks bring it up
    notify_down: tuple[str, ...] = ()  # ... and when they take it down
    virtualhost: str | None = None  # http/https checks: its own Host header (keepalived's); None: the check's

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class VirtualServerConfig:
    name: str
    address: IPAddress | None  # None for fwmark services
    port: int
    fwmark: int  # 0 unless a fwmark service
    family: Literal[4, 6]
    protocol: Protocol = "tcp"
    scheduler: Scheduler = "wlc"
    scheduler_flags: tuple[str, ...] = ()  # keys of SCHEDULER_FLAGS
    method: Method = "nat"
    persistence_timeout: float = 0.0
    persistence_netmask: int | None = None  # prefix length; None: host (/32 or /128)
    one_packet: bool = False  # UDP one-packet scheduling
    quorum: int = 1
    sorry_server: RealServerConfig | None = None
    on_failure: Literal["quiesce", "remove"] = "quiesce"
    slow_start: float = 0.0
    drain_timeout: float = 300.0
    check: CheckConfig = field(default_factory=CheckConfig)
    real_servers: tuple[RealServerConfig, ...] = ()
    smtp_alert: bool | None = None  # mail its quorum changes; None: [global] smtp_alert_checker, smtp_alert
    hysteresis: int = 0  # quorum is lost below quorum - hysteresis and regained at quorum + hysteresis
    quorum_up: tuple[str, ...] = ()  # argv run when it regains quorum
    quorum_down: tuple[str, ...] = ()  # ... and when it loses it (or starts without)
    omega: bool = False  # on stop, run the down hooks of what is still up

    def checks_of(self, rs: RealServerConfig) -> tuple[CheckConfig, ...]:
        """The checks a real server is probed with: its own, else the service's."""
        return rs.checks or (self.check,)

    def check_places(self) -> list[tuple[tuple[str | int, ...], CheckConfig]]:
        """Every check the service runs, with where it is written: ("check",) for the service's
        (when some real server uses it), ("real_server", i, "checks", j) for a real server's own."""
        places: list[tuple[tuple[str | int, ...], CheckConfig]] = []
        if not self.real_servers or any(not rs.checks for rs in self.real_servers):
            places.append((("check",), self.check))
        for index, rs in enumerate(self.real_servers):
            places += [(("real_server", index, "checks", which), check) for which, check in enumerate(rs.checks)]
        return places

    def pool_hooks(self) -> list[tuple[tuple[str | int, ...], tuple[str, ...]]]:
        """The quorum and real-server hooks set, with where they are written."""
        hooks: list[tuple[tuple[str | int, ...], tuple[str, ...]]] = [
            ((key,), getattr(self, key)) for key in ("quorum_up", "quorum_down") if getattr(self, key)]
        for index, rs in enumerate(self.real_servers):
            hooks += [(("real_server", index, key), getattr(rs, key))
                      for key in ("notify_up", "notify_down") if getattr(rs, key)]
        return hooks

    @property
    def label(self) -> str:
        """How people refer to the service: `tcp 192.0.2.10:80` or `fwmark 10`."""
        if self.fwmark:
            return f"fwmark {self.fwmark} (ipv{self.family})"
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True)
class GarpConfig:
    """Announcements of a new master, with keepalived's defaults: a burst at once and a
    second one `delay` later, for neighbours that missed the first."""

    repeat: int = 5  # rounds in a burst, `interval` apart
    interval: float = 0.1
    delay: float = 5.0  # the second burst after becoming master; 0: none
    refresh: float = 0.0  # 0: no periodic refresh while master
    refresh_repeat: int = 1  # rounds in each refresh
    # a master that hears a lower priority's advert (a rival master, split brain healing)
    # announces again: None takes repeat and delay
    lower_prio_repeat: int | None = None
    lower_prio_delay: float | None = None


@dataclass(frozen=True)
class TrackInterface:
    name: str
    weight: int = 0  # 0: the instance goes to FAULT while the link is down


@dataclass(frozen=True)
class TrackVirtualServer:
    name: str
    weight: int = 0  # applied while the virtual server has lost quorum; 0: FAULT


# --- what moves with mastership besides the advertised addresses (keepalived's virtual_ipaddress
# options, virtual_ipaddress_excluded, virtual_routes, virtual_rules) ---------------------------

# Scopes as `ip` names them (the kernel's RT_SCOPE_*); routes and IPv4 addresses have one.
Scope = Literal["global", "site", "link", "host", "nowhere"]
RouteType = Literal["unicast", "local", "blackhole", "unreachable", "prohibit", "throw"]
MAIN_TABLE = 254  # the kernel's main routing table, where `ip route add` puts a route


@dataclass(frozen=True)
class VirtualAddress:
    """How one entry of virtual_ips or excluded_ips is put on its device, as
    `ip addr add ADDRESS dev DEV brd B scope S label L noprefixroute` would: an entry
    written as a plain string is this with the defaults."""

    address: IPInterface
    dev: str = ""  # "": the instance's interface
    broadcast: ipaddress.IPv4Address | None = None  # IPv4 only; None: none set, as `ip addr add`
    scope: Scope = "global"  # IPv4 only: the kernel derives an IPv6 address's scope from the address
    label: str = ""  # IPv4 only; "": the kernel's, the device name; else DEV or DEV:NAME
    noprefixroute: bool = False  # no route for the prefix is added with the address

    def __str__(self) -> str:
        return _words(str(self.address), dev=self.dev, brd=self.broadcast,
                      scope=self.scope if self.scope != "global" else None, label=self.label,
                      noprefixroute=self.noprefixroute)


@dataclass(frozen=True)
class VirtualRoute:
    """A route added on becoming master and removed on leaving it (keepalived's virtual_routes):
    `ip route add [TYPE] TO [via GW] [dev DEV] [src SRC] [metric N] [table T] [scope S]`."""

    to: IPNetwork
    type: RouteType = "unicast"
    via: IPAddress | None = None
    dev: str = ""  # "": none, the kernel picks the device that reaches `via`
    src: IPAddress | None = None  # preferred source address (often a VIP)
    metric: int = 0  # 0: the kernel's (0 for IPv4, 1024 for IPv6)
    table: int = MAIN_TABLE
    scope: Scope | None = None  # None: as `ip route` picks it (link without via, host for local)

    def __str__(self) -> str:
        kind = "" if self.type == "unicast" else f"{self.type} "
        return _words(f"{kind}{self.to}", via=self.via, dev=self.dev, src=self.src, metric=self.metric,
                      table=self.table if self.table != MAIN_TABLE else None, scope=self.scope)


@dataclass(frozen=True)
class VirtualRule:
    """A policy routing rule added on becoming master and removed on leaving it (keepalived's
    virtual_rules): `ip rule add [from F] [to T] [iif I] [oif O] [fwmark M/MASK] [priority P] table N`.
    The TOML keys `from` and `to` are the fields `from_` and `to`."""

    table: int
    from_: IPNetwork | None = None
    to: IPNetwork | None = None
    priority: int | None = None  # None: the kernel picks one (just above the last rule with one)
    iif: str = ""
    oif: str = ""
    fwmark: int = 0  # 0: any mark
    fwmask: int | None = None  # None: all 32 bits
    family: Literal[4, 6] | None = None  # None: from `from`/`to`, IPv4 when neither is given

    @property
    def ip_family(self) -> Literal[4, 6]:
        net = self.from_ or self.to
        return self.family or (net.version if net is not None else 4)

    def __str__(self) -> str:
        mark = f"{self.fwmark:#x}" + (f"/{self.fwmask:#x}" if self.fwmask is not None else "") if self.fwmark else None
        return _words("from " + str(self.from_ or "all"), to=self.to, iif=self.iif, oif=self.oif, fwmark=mark,
                      priority=self.priority, table=self.table)


def _words(head: str, **options: object) -> str:
    """`head key value ...` for the options that are set (a true flag is its name alone), as `ip` shows them."""
    words = [head]
    for key, value in options.items():
        if value is True:
            words.append(key)
        elif value not in (None, "", False, 0):
            words.append(f"{key} {value}")
    return " ".join(words)


# What `notify` is given after its own arguments: directord's (instance, state, priority),
# or keepalived's ("INSTANCE", instance, "MASTER|BACKUP|FAULT|STOP", priority)
NotifyArguments = Literal["directord", "keepalived"]


@dataclass(frozen=True)
class VrrpSyncGroupConfig:
    """Hooks run when a sync group as a whole changes state, as keepalived's vrrp_sync_group
    runs them: all members master, all backup, or one in fault."""

    name: str
    notify: tuple[str, ...] = ()  # argv; the group, its state (and keepalived's 0) are appended
    notify_arguments: NotifyArguments = "directord"
    notify_master: tuple[str, ...] = ()  # argv, run as it is
    notify_backup: tuple[str, ...] = ()
    notify_fault: tuple[str, ...] = ()
    smtp_alert: bool | None = None  # one mail per change of the group's state; None: smtp_alert_vrrp


@dataclass(frozen=True)
class TrackScript:
    name: str  # a [[vrrp_script]] of the file
    weight: int | None = None  # None: the script's own weight (the loader fills it in)
    reverse: bool = False  # the loader fills in the script's own unless the reference sets it


@dataclass(frozen=True)
class TrackFile:
    name: str  # a [[track_file]] of the file
    weight: int | None = None  # None: the track_file's own weight (the loader fills it in)
    reverse: bool = False  # the loader fills in the track_file's own unless the reference sets it


@dataclass(frozen=True)
class TrackProcess:
    name: str  # a [[track_process]] of the file
    weight: int | None = None  # None: the track_process's own weight (the loader fills it in)
    reverse: bool = False  # the loader fills in the track_process's own unless the reference sets it


@dataclass(frozen=True)
class VrrpInstanceConfig:
    name: str
    interface: str
    vrid: int
    priority: int = 100
    version: Literal[2, 3] = 3
    advert_interval: float = 1.0  # seconds; v3 in 10 ms steps, v2 whole seconds
    preempt: bool = True
    preempt_delay: float = 0.0
    virtual_ips: tuple[IPInterface, ...] = ()
    # carried with mastership like virtual_ips but not in the adverts; either address family
    excluded_ips: tuple[IPInterface, ...] = ()
    virtual_routes: tuple[VirtualRoute, ...] = ()
    virtual_rules: tuple[VirtualRule, ...] = ()
    # Not a key: the options of the entries of virtual_ips and excluded_ips written as tables,
    # kept beside them so that virtual_ips stays the adverts' address list (see `carried_addresses`)
    address_options: tuple[VirtualAddress, ...] = ()
    unicast_peers: tuple[IPAddress, ...] = ()  # empty: multicast
    unicast_src: IPAddress | None = None  # default: the interface's primary address
    # routed unicast: the TTL (hop limit) our adverts leave with, and the range a peer's may
    # arrive with (one less per router on the way); multicast is always 255 both ways
    unicast_ttl: int = 255
    unicast_min_ttl: int = 255
    unicast_max_ttl: int = 255
    # VRRPv2 authentication as keepalived does it (RFC 2338; RFC 3768 and v3 have none): "pass"
    # sends the password in clear, "ah" an IPsec AH HMAC-MD5-96 keyed with it. Both peers must agree.
    auth_type: Literal["pass", "ah"] | None = None
    auth_pass: str | None = field(default=None, repr=False)  # its first 8 bytes (UTF-8) are used
    garp: GarpConfig = field(default_factory=GarpConfig)
    track_interfaces: tuple[TrackInterface, ...] = ()
    track_own_interface: bool = True  # false: `interface` going down is no fault (keepalived's dont_track_primary)
    track_virtual_servers: tuple[TrackVirtualServer, ...] = ()
    track_scripts: tuple[TrackScript, ...] = ()  # keepalived's track_script
    track_files: tuple[TrackFile, ...] = ()  # keepalived's track_file
    track_processes: tuple[TrackProcess, ...] = ()  # keepalived's track_process
    notify: tuple[str, ...] = ()  # argv; instance, state and priority are appended
    notify_arguments: NotifyArguments = "directord"
    notify_master: tuple[str, ...] = ()  # argv run as it is, before notify (keepalived's order)
    notify_backup: tuple[str, ...] = ()
    notify_fault: tuple[str, ...] = ()
    notify_stop: tuple[str, ...] = ()  # when the instance stops: the daemon's shutdown, or a reload removing it
    sync_group: str | None = None  # instances in one group change state together
    v3_checksum_as_v2: bool = False  # v3 checksum without the IPv4 pseudo-header
    check_advert_addresses: bool = True  # drop adverts whose address list is not our virtual_ips
    adopt_master_interval: bool = True  # v3: follow the master's interval (RFC 5798); false drops them
    # keepalived's use_vmac: the VIPs live on a macvlan with the VRRP MAC 00:00:5e:00:01:<vrid>,
    # so a failover moves the MAC and clients' ARP caches never change
    use_vmac: bool = False
    vmac_interface: str = ""  # "": vrrp.<vrid>, as keepalived names it
    vmac_xmit_base: bool = False  # adverts on `interface` rather than the VMAC (needed with unicast_peers)
    # Not keys of the table: the loader copies them in, so the VRRP process needs no other table.
    sync_group_hooks: VrrpSyncGroupConfig | None = None  # from [[vrrp_sync_group]] of sync_group
    notify_fifo: str = ""  # [global] notify_fifo
    smtp_alert: bool | None = None  # mail its state changes; None: [global] smtp_alert_vrrp, smtp_alert

    @property
    def family(self) -> Literal[4, 6]:
        return self.virtual_ips[0].version if self.virtual_ips else 4

    @property
    def vmac_name(self) -> str:
        """The VMAC interface's name; "" without use_vmac."""
        return (self.vmac_interface or f"vrrp.{self.vrid}") if self.use_vmac else ""

    @property
    def advert_interface(self) -> str:
        """Where adverts are sent and received: the VMAC unless vmac_xmit_base."""
        return self.vmac_name if self.use_vmac and not self.vmac_xmit_base else self.interface

    @property
    def address_interface(self) -> str:
        """Where the addresses without a `dev` of their own go: the VMAC with use_vmac."""
        return self.vmac_name or self.interface

    @property
    def carried_addresses(self) -> tuple[VirtualAddress, ...]:
        """Every address that moves with mastership, virtual_ips then excluded_ips, each with
        its options: those of its table entry, else the defaults (a plain string, or a config
        built in code that sets only virtual_ips)."""
        options = {option.address: option for option in self.address_options}
        return tuple(options.get(ip) or VirtualAddress(ip) for ip in (*self.virtual_ips, *self.excluded_ips))


@dataclass(frozen=True)
class VrrpScriptConfig:
    """A program the daemon runs every `interval` whose exit status shifts or faults the
    instances that track it (keepalived's vrrp_script). It runs in the daemon, never in the
    VRRP process, so a slow script cannot delay an advert."""

    name: str
    command: tuple[str, ...]  # argv, never a shell string
    interval: float = 1.0
    timeout: float | None = None  # None: the interval
    weight: int = 0  # 0: a tracking instance goes to FAULT while the script fails
    rise: int = 1  # successes in a row that turn a failed script ok
    fall: int = 1  # failures in a row that turn an ok script failed
    init_fail: bool = False  # start failed (rise successes to pass), not unknown (the first result decides)
    user: str | None = None  # run as this user; None: the daemon's own (root)
    group: str | None = None  # None: the user's primary group
    reverse: bool = False  # the weight's effect turned around: subtracted while ok (weight 0: FAULT while ok)


@dataclass(frozen=True)
class TrackFileConfig:
    """A file holding an integer: value x weight is added to the priority of the instances
    that track it (keepalived's track_file)."""

    name: str
    path: str  # absolute
    weight: int = 1  # 0: a non-zero value puts a tracking instance in FAULT
    interval: float = 1.0  # how often the file is read
    init_file: int | None = None  # written to a missing file when tracking starts; None: never
    init_overwrite: bool = False  # with init_file: written even over an existing file
    reverse: bool = False  # -(value x weight) is added (weight 0: FAULT while the value is 0)


ParamMatch = Literal["exact", "partial", "initial"]


@dataclass(frozen=True)
class TrackProcessConfig:
    """Processes counted in /proc: ok while their number is within quorum..quorum_max
    (keepalived's vrrp_track_process)."""

    name: str
    process: str  # the process name (/proc/PID/comm), or argv[0] with full_command or args
    args: tuple[str, ...] | None = None  # None: arguments are not looked at
    param_match: ParamMatch = "exact"  # how args match the process's arguments
    full_command: bool = False  # match argv[0] instead of the name
    quorum: int = 1
    quorum_max: int | None = None  # None: no upper bound
    weight: int = 1  # 0: a tracking instance goes to FAULT without quorum
    fork_delay: float = 0.0  # quorum gained: wait this long before it counts
    terminate_delay: float = 0.0  # quorum lost: wait this long before it counts
    interval: float = 1.0  # how often /proc is read
    reverse: bool = False  # the weight's effect turned around (weight 0: FAULT with quorum)


@dataclass(frozen=True)
class Config:
    path: str
    global_: GlobalConfig = field(default_factory=GlobalConfig)
    ipvs: IpvsConfig = field(default_factory=IpvsConfig)
    virtual_servers: tuple[VirtualServerConfig, ...] = ()
    vrrp_instances: tuple[VrrpInstanceConfig, ...] = ()
    vrrp_sync_groups: tuple[VrrpSyncGroupConfig, ...] = ()
    vrrp_scripts: tuple[VrrpScriptConfig, ...] = ()
    track_files: tuple[TrackFileConfig, ...] = ()
    track_processes: tuple[TrackProcessConfig, ...] = ()
    fragments: tuple[str, ...] = ()  # the files `include` read besides `path` (not a key)

    def virtual_server(self, name: str) -> VirtualServerConfig | None:
        return next((vs for vs in self.virtual_servers if vs.name == name), None)
