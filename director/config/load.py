"""Load directord.toml into the validated model in `director.config.model`.

Every problem becomes one line "FILE: key.path: reason"; all of them are
collected before `ConfigError` is raised, so one run shows a user everything.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from typing import Any

from director.config.model import (
    CHECK_TYPES,
    METHODS,
    PROTOCOLS,
    SCHEDULER_FLAGS,
    SCHEDULERS,
    SYNC_PACKET_ONE_CONNECTION,
    TUNNEL_TYPES,
    CheckConfig,
    Config,
    GarpConfig,
    GlobalConfig,
    IpvsConfig,
    RealServerConfig,
    SyncDaemonConfig,
    TrackInterface,
    TrackVirtualServer,
    VirtualServerConfig,
    VrrpInstanceConfig,
)
from director.config.read import Section, parse_endpoint, parse_interface

MAX_WEIGHT = 65535
MAX_BODY_LIMIT = 16 * 1024 * 1024
# Check options and the check types they apply to.
CHECK_OPTION_TYPES = {
    "send": ("tcp",),
    "expect": ("tcp",),
    "method": ("http", "https"),
    "path": ("http", "https"),
    "host": ("http", "https"),
    "expect_body": ("http", "https"),
    "max_body": ("http", "https"),
    "tls_verify": ("https",),
    "sni": ("https",),
    "expect_status": ("http", "https", "sip"),
    "transport": ("sip",),
    "sip_uri": ("sip",),
    "command": ("exec",),
    "dynamic_weight": ("exec",),
}
HTTP_METHODS = ("GET", "HEAD", "POST", "OPTIONS")


class ConfigError(Exception):
    """The config is invalid; `lines` holds one human-readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_config(path: str) -> Config:
    """Read and validate PATH; raise ConfigError naming the file, key and reason."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: str = "<config>") -> Config:
    errors: list[str] = []
    root = Section(data, "", errors)
    global_section = root.table("global")
    ipvs_section = root.table("ipvs")
    config = Config(
        path=path,
        global_=_global(global_section) if global_section else GlobalConfig(
            router_id=socket.gethostname()),
        ipvs=_ipvs(ipvs_section) if ipvs_section else IpvsConfig(),
        virtual_servers=tuple(_virtual_server(s) for s in root.tables("virtual_server")),
    )
    vs_names = {vs.name for vs in config.virtual_servers}
    instances = tuple(_vrrp_instance(s, vs_names) for s in root.tables("vrrp_instance"))
    config = Config(config.path, config.global_, config.ipvs, config.virtual_servers, instances)
    root.finish()
    errors.extend(_cross_checks(config))
    if errors:
        raise ConfigError([f"{path}: {line}" for line in errors])
    return config


# --- [global] and [ipvs] ------------------------------------------------------


def _global(s: Section) -> GlobalConfig:
    metrics_listen = s.string("metrics_listen", "127.0.0.1:9612")
    if metrics_listen and not _valid_listen(metrics_listen):
        s.error("metrics_listen", f'"{metrics_listen}" must be "HOST:PORT", "[V6]:PORT" or "" to disable')
    result = GlobalConfig(
        router_id=s.string("router_id", socket.gethostname()),
        control_socket=s.string("control_socket", GlobalConfig.control_socket),
        state_dir=s.string("state_dir", GlobalConfig.state_dir),
        metrics_listen=metrics_listen,
        reconcile_interval=s.duration("reconcile_interval", 5.0, minimum=0.1),
        log_level=s.string("log_level", "info", choices=("debug", "info", "warning", "error")),
        vrrp_realtime_priority=s.integer("vrrp_realtime_priority", GlobalConfig.vrrp_realtime_priority, lo=0, hi=99),
    )
    s.finish()
    return result


def _valid_listen(text: str) -> bool:
    match = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(\d{1,5})", text)
    return bool(match) and 0 < int(match.group(2)) < 65536


def _ipvs(s: Section) -> IpvsConfig:
    timeouts = s.table("timeouts")
    tcp = tcpfin = udp = None
    if timeouts:
        limit = 31 * 24 * 3600.0
        tcp = timeouts.duration("tcp", None, minimum=1, maximum=limit, step=1)
        tcpfin = timeouts.duration("tcpfin", None, minimum=1, maximum=limit, step=1)
        udp = timeouts.duration("udp", None, minimum=1, maximum=limit, step=1)
        timeouts.finish()
    sync = s.table("sync_daemon")
    result = IpvsConfig(
        timeout_tcp=tcp,
        timeout_tcpfin=tcpfin,
        timeout_udp=udp,
        sync_daemon=_sync_daemon(sync) if sync else None,
        expire_nodest_conn=s.boolean("expire_nodest_conn", None),
        expire_quiescent_template=s.boolean("expire_quiescent_template", None),
        conntrack=s.boolean("conntrack", None),
        on_stop=s.string("on_stop", "keep", choices=("keep", "remove")),
    )
    s.finish()
    return result


def _sync_daemon(s: Section) -> SyncDaemonConfig:
    result = SyncDaemonConfig(
        interface=s.string("interface"),
        syncid=s.integer("syncid", 0, 0, 255),
        mcast_group=s.address("mcast_group", None),
        mcast_port=s.integer("mcast_port", 8848, 1, 65535),
        mcast_ttl=s.integer("mcast_ttl", 1, 1, 255),
        max_packet_size=s.integer("max_packet_size", SYNC_PACKET_ONE_CONNECTION, 0, 65535),
    )
    if result.interface is not None:
        _check_ifname(s, "interface", result.interface)
    s.finish()
    return result


def _check_ifname(s: Section, key: str, name: str) -> None:
    if not re.fullmatch(r"[^\s/:]{1,15}", name):
        s.error(key, f'"{name}" is not a valid interface name')


# --- [[virtual_server]] ---------------------------------------------------------


def _virtual_server(s: Section) -> VirtualServerConfig:
    name = s.string("name")
    address = s.address("address", None)
    fwmark = s.integer("fwmark", 0, 1, 2**32 - 1)
    protocol = s.string("protocol", "tcp", choices=PROTOCOLS)
    family_text = s.string("family", None, choices=("ipv4", "ipv6"))
    persistence = s.duration("persistence_timeout", 0.0, maximum=31 * 24 * 3600.0, step=1)
    port_value = s.integer("port", None, 0, 65535)
    port = port_value or 0
    if address is not None and fwmark:
        s.error("fwmark", "set either address/port or fwmark, not both")
    elif address is None and not fwmark and not s.has("address"):
        s.error("address", "is required (or set fwmark for a firewall-mark service)")
    if address is not None and s.has("family") and family_text != f"ipv{address.version}":
        s.error("family", f"does not match address {address}")
    if address is not None and port == 0 and not persistence and (port_value == 0 or not s.has("port")):
        s.error("port", "is required (port 0 means all ports and needs persistence_timeout)")
    if fwmark and s.has("port"):
        s.error("port", "does not apply to fwmark services")
    family = address.version if address is not None else (6 if family_text == "ipv6" else 4)

    scheduler = s.string("scheduler", "wlc", choices=SCHEDULERS)
    flags = tuple(s.string_list("scheduler_flags", []) or [])
    for index, flag in enumerate(flags):
        if flag not in SCHEDULER_FLAGS:
            s.error(f"scheduler_flags[{index}]", f'"{flag}" is not one of {", ".join(SCHEDULER_FLAGS)}')
        elif scheduler not in SCHEDULER_FLAGS[flag]:
            s.error(f"scheduler_flags[{index}]", f'"{flag}" applies only to the {SCHEDULER_FLAGS[flag][0]} scheduler')
    method = s.string("method", "nat", choices=METHODS)
    netmask = s.integer("persistence_netmask", None, 0, 32 if family == 4 else 128)
    if netmask is not None and not persistence:
        s.error("persistence_netmask", "needs persistence_timeout")
    one_packet = s.boolean("one_packet", False)
    if one_packet and protocol != "udp":
        s.error("one_packet", "applies only to udp services")

    check_section = s.table("check")
    check = _check(check_section, protocol) if check_section else CheckConfig()
    real_servers = tuple(_real_server(r, family, port) for r in s.tables("real_server"))
    sorry = _sorry_server(s, family, port)
    result = VirtualServerConfig(
        name=name or "",
        address=address,
        port=0 if fwmark else port,
        fwmark=fwmark,
        family=family,
        protocol=protocol,
        scheduler=scheduler,
        scheduler_flags=flags,
        method=method,
        persistence_timeout=persistence,
        persistence_netmask=netmask,
        one_packet=one_packet,
        quorum=s.integer("quorum", 1, 0, 2**31),
        sorry_server=sorry,
        on_failure=s.string("on_failure", "quiesce", choices=("quiesce", "remove")),
        slow_start=s.duration("slow_start", 0.0, maximum=24 * 3600.0),
        drain_timeout=s.duration("drain_timeout", 300.0, maximum=7 * 24 * 3600.0),
        check=check,
        real_servers=real_servers,
    )
    _check_real_servers(s, result)
    if check.type in ("tcp", "http", "https", "sip") and check.port is None \
            and any(rs.port == 0 for rs in real_servers):
        s.error("check.port", f"is required: {check.type} checks need a port and some real servers have port 0")
    s.finish()
    return result


def _real_server(s: Section, family: int, service_port: int) -> RealServerConfig:
    address = s.address("address")
    if address is not None and address.version != family:
        s.error("address", f"{address} is IPv{address.version} but the virtual server is IPv{family}")
    result = RealServerConfig(
        address=address or ipaddress.ip_address("0.0.0.0"),
        port=s.integer("port", service_port, 0 if service_port == 0 else 1, 65535),
        weight=s.integer("weight", 1, 0, MAX_WEIGHT),
        method=s.string("method", None, choices=METHODS),
        upper_threshold=s.integer("upper_threshold", 0, 0, 2**32 - 1),
        lower_threshold=s.integer("lower_threshold", 0, 0, 2**32 - 1),
        tunnel_type=s.string("tunnel_type", "ipip", choices=TUNNEL_TYPES),
        tunnel_port=s.integer("tunnel_port", 0, 0, 65535),
        tunnel_checksum=s.string("tunnel_checksum", "nocsum", choices=("nocsum", "csum", "remcsum")),
    )
    if result.upper_threshold and result.lower_threshold > result.upper_threshold:
        s.error("lower_threshold", f"{result.lower_threshold} is above upper_threshold {result.upper_threshold}")
    if result.tunnel_type == "gue" and not result.tunnel_port:
        s.error("tunnel_port", "is required for tunnel_type gue")
    s.finish()
    return result


def _check_real_servers(s: Section, vs: VirtualServerConfig) -> None:
    seen: set[tuple[str, int]] = set()
    for index, rs in enumerate(vs.real_servers):
        key = (str(rs.address), rs.port)
        if key in seen:
            s.error(f"real_server[{index}]", f"{rs.endpoint} is listed twice")
        seen.add(key)
        method = rs.method or vs.method
        if method != "tun" and (rs.tunnel_port or rs.tunnel_type != "ipip"):
            s.error(f"real_server[{index}].tunnel_type", "tunnel options need method = \"tun\"")
        if method in ("dr", "tun") and vs.port and rs.port != vs.port:
            s.error(f"real_server[{index}].port",
                    f"{method} cannot change the port ({rs.port} != service port {vs.port})")


def _sorry_server(s: Section, family: int, service_port: int) -> RealServerConfig | None:
    value = s.raw("sorry_server", None)
    if value is None:
        return None
    if isinstance(value, dict):
        sub = Section(value, s.key_path("sorry_server"), s.errors)
        return _real_server(sub, family, service_port)
    if not isinstance(value, str):
        s.error("sorry_server", 'must be "ADDRESS:PORT" or a table')
        return None
    try:
        address_text, port = parse_endpoint(value)
    except ValueError as exc:
        s.error("sorry_server", str(exc))
        return None
    address = ipaddress.ip_address(address_text)
    port = service_port if port is None else port
    if address.version != family:
        s.error("sorry_server", f"{address} is IPv{address.version} but the virtual server is IPv{family}")
    return RealServerConfig(address=address, port=port, weight=1)


def _check(s: Section, protocol: str) -> CheckConfig:
    default_type = "tcp" if protocol == "tcp" else "none"
    kind = s.string("type", default_type, choices=CHECK_TYPES)
    for option, types in CHECK_OPTION_TYPES.items():
        if s.has(option) and kind not in types:
            s.error(option, f'applies only to {"/".join(types)} checks, not type "{kind}"')
    interval = s.duration("interval", 2.0, minimum=0.01, maximum=3600.0)
    default = CheckConfig()
    result = CheckConfig(
        type=kind,
        interval=interval,
        timeout=s.duration("timeout", min(1.0, interval), minimum=0.01, maximum=3600.0),
        rise=s.integer("rise", 2, 1, 1000),
        fall=s.integer("fall", 3, 1, 1000),
        initial=s.string("initial", "down", choices=("up", "down")),
        transition_interval=s.duration("transition_interval", None, minimum=0.01, maximum=3600.0),
        jitter=s.number("jitter", 0.5, 0.0, 1.0),
        port=s.integer("port", None, 1, 65535),
        send=_send_bytes(s),
        expect=_regex(s, "expect"),
        method=s.string("method", "GET", choices=HTTP_METHODS),
        path=s.string("path", "/"),
        host=s.string("host", None),
        expect_status=_status_ranges(s) or default.expect_status,
        expect_body=_regex(s, "expect_body"),
        max_body=s.integer("max_body", default.max_body, 1, MAX_BODY_LIMIT),
        tls_verify=s.boolean("tls_verify", False),
        sni=s.string("sni", None),
        transport=s.string("transport", "udp", choices=("udp", "tcp")),
        sip_uri=s.string("sip_uri", None),
        command=_command(s, required=kind == "exec"),
        dynamic_weight=s.boolean("dynamic_weight", False),
    )
    if isinstance(result.path, str) and not result.path.startswith("/"):
        s.error("path", f'must start with "/", got "{result.path}"')
    if result.sip_uri is not None and not re.match(r"sips?:", result.sip_uri):
        s.error("sip_uri", f'must start with "sip:" or "sips:", got "{result.sip_uri}"')
    s.finish()
    return result


def _send_bytes(s: Section) -> bytes | None:
    text = s.string("send", None)
    return text.encode() if isinstance(text, str) else None


def _regex(s: Section, key: str) -> str | None:
    pattern = s.string(key, None)
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            s.error(key, f"invalid regular expression: {exc}")
            return None
    return pattern


def _status_ranges(s: Section) -> tuple[tuple[int, int], ...] | None:
    value = s.raw("expect_status", None)
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    ranges: list[tuple[int, int]] = []
    for index, item in enumerate(items):
        key = f"expect_status[{index}]" if isinstance(value, list) else "expect_status"
        parsed = _status_range(item)
        if parsed is None:
            s.error(key, f'must be a status code 100..699 or a range "200-299", got {item!r}')
            return None
        ranges.append(parsed)
    if not ranges:
        s.error("expect_status", "must list at least one status")
    return tuple(ranges) or None


def _status_range(item: object) -> tuple[int, int] | None:
    if isinstance(item, int) and not isinstance(item, bool):
        low = high = item
    elif isinstance(item, str) and re.fullmatch(r"\d{3}(-\d{3})?", item):
        low, _, high_text = item.partition("-")
        low, high = int(low), int(high_text or low)
    else:
        return None
    return (low, high) if 100 <= low <= high <= 699 else None


def _command(s: Section, required: bool) -> tuple[str, ...]:
    value = s.raw("command", None)
    if value is None:
        if required:
            s.error("command", 'is required for exec checks, e.g. ["/usr/local/bin/check-app", "--fast"]')
        return ()
    if isinstance(value, str):
        s.error("command", 'must be an argv list such as ["/usr/bin/check", "arg"]; shell strings are not run')
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        s.error("command", "must be a non-empty list of non-empty strings")
        return ()
    return tuple(value)


# --- [[vrrp_instance]] ------------------------------------------------------------


def _vrrp_instance(s: Section, vs_names: set[str]) -> VrrpInstanceConfig:
    version = s.integer("version", 3, 2, 3)
    if version == 2:
        interval = s.duration("advert_interval", 1.0, minimum=1, maximum=255, step=1)
    else:
        interval = s.duration("advert_interval", 1.0, minimum=0.01, maximum=40.95, step=0.01)
    interface = s.string("interface")
    if isinstance(interface, str):
        _check_ifname(s, "interface", interface)
    vips = _virtual_ips(s)
    family = vips[0].version if vips else 4
    if version == 2 and family == 6:
        s.error("version", "VRRPv2 carries IPv4 only; use version = 3 for IPv6")
    result = VrrpInstanceConfig(
        name=s.string("name") or "",
        interface=interface or "",
        vrid=s.integer("vrid", lo=1, hi=255) or 0,
        priority=s.integer("priority", 100, 1, 255),
        version=version,
        advert_interval=interval,
        preempt=s.boolean("preempt", True),
        preempt_delay=s.duration("preempt_delay", 0.0, maximum=1000.0),
        virtual_ips=vips,
        unicast_peers=_peer_list(s, family),
        unicast_src=s.address("unicast_src", None),
        garp=_garp(s.table("garp")),
        track_interfaces=_track_interfaces(s),
        track_virtual_servers=_track_virtual_servers(s, vs_names),
        notify=_notify(s),
        sync_group=s.string("sync_group", None),
        v3_checksum_as_v2=s.boolean("v3_checksum_as_v2", False),
    )
    if result.v3_checksum_as_v2 and (version != 3 or family != 4):
        s.error("v3_checksum_as_v2", "applies only to version 3 with IPv4")
    if result.unicast_src is not None and result.unicast_src.version != family:
        s.error("unicast_src", f"{result.unicast_src} is not IPv{family} like virtual_ips")
    if result.preempt_delay and not result.preempt:
        s.error("preempt_delay", "has no effect with preempt = false")
    s.finish()
    return result


def _virtual_ips(s: Section) -> tuple:
    items = s.string_list("virtual_ips", None)
    if items is None:
        if not s.has("virtual_ips"):
            s.error("virtual_ips", "is required (at least one address)")
        return ()
    if not items:
        s.error("virtual_ips", "must list at least one address")
    vips = []
    for index, text in enumerate(items):
        try:
            vips.append(parse_interface(text))
        except ValueError:
            s.error(f"virtual_ips[{index}]", f'"{text}" is not an address with optional /prefix')
    families = {vip.version for vip in vips}
    if len(families) > 1:
        s.error("virtual_ips", "mixes IPv4 and IPv6; use one instance per address family")
    return tuple(vips)


def _peer_list(s: Section, family: int) -> tuple:
    peers = []
    for index, text in enumerate(s.string_list("unicast_peers", []) or []):
        try:
            peer = ipaddress.ip_address(text)
        except ValueError:
            s.error(f"unicast_peers[{index}]", f'"{text}" is not an address')
            continue
        if peer.version != family:
            s.error(f"unicast_peers[{index}]", f"{peer} is not IPv{family} like virtual_ips")
        peers.append(peer)
    return tuple(peers)


def _garp(s: Section | None) -> GarpConfig:
    if s is None:
        return GarpConfig()
    result = GarpConfig(
        repeat=s.integer("repeat", 5, 0, 100),
        interval=s.duration("interval", 0.1, maximum=60.0),
        refresh=s.duration("refresh", 0.0, maximum=24 * 3600.0),
    )
    s.finish()
    return result


def _track_interfaces(s: Section) -> tuple[TrackInterface, ...]:
    tracked = []
    for item in _name_weight_items(s, "track_interfaces"):
        if item:
            tracked.append(TrackInterface(*item))
    return tuple(tracked)


def _track_virtual_servers(s: Section, vs_names: set[str]) -> tuple[TrackVirtualServer, ...]:
    tracked = []
    for index, item in enumerate(_name_weight_items(s, "track_virtual_servers")):
        if item and item[0] not in vs_names:
            s.error(f"track_virtual_servers[{index}].name", f'no virtual_server is named "{item[0]}"')
        elif item:
            tracked.append(TrackVirtualServer(*item))
    return tuple(tracked)


def _name_weight_items(s: Section, key: str) -> list[tuple[str, int] | None]:
    """Entries given as "name" or {name = "...", weight = N}; None marks an invalid one."""
    value = s.raw(key, [])
    if not isinstance(value, list):
        s.error(key, "must be a list")
        return []
    items: list[tuple[str, int] | None] = []
    for index, entry in enumerate(value):
        if isinstance(entry, str):
            items.append((entry, 0))
            continue
        if not isinstance(entry, dict):
            s.error(f"{key}[{index}]", 'must be a name or {name = "...", weight = N}')
            items.append(None)
            continue
        sub = Section(entry, f"{s.key_path(key)}[{index}]", s.errors)
        name, weight = sub.string("name"), sub.integer("weight", 0, -254, 254)
        sub.finish()
        items.append((name, weight) if name else None)
    return items


def _notify(s: Section) -> tuple[str, ...]:
    value = s.raw("notify", None)
    if value is None:
        return ()
    if isinstance(value, str):
        if not value or any(ch.isspace() for ch in value):
            s.error("notify", 'must be a program path or an argv list such as ["/usr/bin/x", "--flag"]; '
                    "shell strings are not run")
            return ()
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    s.error("notify", "must be a program path or a non-empty list of strings")
    return ()


# --- checks across sections -------------------------------------------------------


def _cross_checks(config: Config) -> list[str]:
    errors: list[str] = []
    _unique(errors, "virtual_server", [vs.name for vs in config.virtual_servers], "name")
    _unique(errors, "virtual_server", [vs.label for vs in config.virtual_servers], "address")
    _unique(errors, "vrrp_instance", [vi.name for vi in config.vrrp_instances], "name")
    _unique(errors, "vrrp_instance",
            [f"vrid {vi.vrid} on {vi.interface} (IPv{vi.family})" for vi in config.vrrp_instances],
            "vrid")
    return errors


def _unique(errors: list[str], table: str, values: list[str], key: str) -> None:
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        if not value:
            continue
        if value in first:
            errors.append(f"{table}[{index}].{key}: {value} is already used by {table}[{first[value]}]")
        else:
            first[value] = index
