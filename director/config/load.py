"""Load directord.toml into the validated model in `director.config.model`.

Every problem becomes one line "FILE: key.path: reason"; all of them are
collected before `ConfigError` is raised, so one run shows a user everything.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import sys
import tomllib
from typing import Any

from director.config import load_tracking
from director.config.http_keys import HTTP_CHECK, http_problems, url_readers, urls_reader
from director.config.include import IncludeError, Sources, expand
from director.config.locate import SourceMap
from director.config.mail_keys import GLOBAL_MAIL, SMTP_ALERT
from director.config.model import (
    CHECK_OPTION_TYPES,
    MAIN_TABLE,
    PORT_CHECK_TYPES,
    SCHEDULER_FLAGS,
    CheckConfig,
    Config,
    GarpConfig,
    GlobalConfig,
    HttpUrl,
    IPAddress,
    IPInterface,
    IpvsConfig,
    RealServerConfig,
    SyncDaemonConfig,
    TrackInterface,
    TrackVirtualServer,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VirtualServerConfig,
    VrrpInstanceConfig,
    VrrpSyncGroupConfig,
    field_choices,
    field_default,
)
from director.config.problems import Problem, render
from director.config.read import (
    Reader,
    Section,
    address,
    boolean,
    duration,
    integer,
    number,
    parse_endpoint,
    parse_interface,
    read_field,
    read_fields,
    required,
    text,
)
from director.config.read import port as read_port
from director.config.regex_risk import backtracking_risk
from director.config.resolve import Resolved, is_host_name, real_server_names, resolve

# Defaults and choices come from the fields of the model (see `read_fields`); what this
# module adds is bounds, the checks across keys, and the few defaults that depend on
# another value (each marked where it is read).
MAX_WEIGHT = 65535
MAX_BODY_LIMIT = 16 * 1024 * 1024
MAX_CONFIG_BYTES = 16 * 2**20  # far above any real table (5,000 real servers fit in well under 1 MiB)
MAX_KEY_DEPTH = 64
U32 = 2**32 - 1
DAY = 24 * 3600.0
MONTH = 31 * DAY
# VirtualServerConfig.family is 4 or 6; the TOML key says "ipv4" or "ipv6".
FAMILY_NAMES = {f"ipv{n}": n for n in field_choices(VirtualServerConfig, "family")}


class ConfigError(Exception):
    """The config is invalid; `lines` holds one human-readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_config(path: str) -> Config:
    """Read and validate PATH (and the fragments it includes); raise ConfigError naming the
    file, line, key and reason."""
    data, sources = read_config(path)
    return parse_config(data, path, sources, resolve(real_server_names(data)))


def read_config(path: str) -> tuple[dict[str, Any], Sources]:
    """The parsed file with its `include` fragments merged in, and where each key came from."""
    data, source = _read_one(path)
    try:
        return expand(path, data, source, _read_one)
    except IncludeError as exc:
        raise ConfigError([str(exc)]) from exc


def _read_one(path: str) -> tuple[dict[str, Any], SourceMap]:
    text = read_text(path)
    return parse_toml(text, path), SourceMap(text)


def explain(path: str, problems: list[Problem], kind: str = "") -> list[str]:
    """Lines for problems found after loading (host checks, warnings), placed like the loader's.

    Reads PATH again: only check-config asks, once, and the file just loaded."""
    if not problems:
        return []
    try:
        data, sources = read_config(path)
    except ConfigError:  # changed since it was loaded: still say what was found
        data, sources = {}, None
    return render(problems, path, data, sources, kind)


def read_toml(path: str) -> dict[str, Any]:
    """The parsed file, or ConfigError with one line."""
    return parse_toml(read_text(path), path)


def read_text(path: str) -> str:
    """The file as text, bounded in size."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: too large: a config is at most {MAX_CONFIG_BYTES // 2**20} MiB"])
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: not UTF-8 text (byte {exc.start})"]) from exc


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """TOML bounded in nesting, or ConfigError with one line.

    tomllib alone raises ValueError on a 5,000-digit integer, RecursionError on deep
    nesting, and takes time quadratic in the depth of a dotted key."""
    too_deep = _too_deep_key_line(text)
    if too_deep:
        raise ConfigError([f"{path}:{too_deep}: a key nested more than {MAX_KEY_DEPTH} levels deep"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([f"{path}: invalid TOML: arrays or tables nested too deeply"]) from exc
    except ValueError as exc:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise ConfigError([f"{path}: invalid TOML: a number with more than {sys.get_int_max_str_digits()} digits"]) \
            from exc


def _too_deep_key_line(text: str) -> int:
    """The first line (1-based) whose key or table header has more than MAX_KEY_DEPTH parts, else 0.

    Counts the dots before the first `=` (all of a `[header]` line); dots inside a
    quoted key count too, which only errs on keys no real config has."""
    for line_number, line in enumerate(text.splitlines(), 1):
        head = line if line.lstrip().startswith("[") else line.partition("=")[0]
        if head.count(".") >= MAX_KEY_DEPTH:
            return line_number
    return 0


def parse_config(data: dict[str, Any], path: str = "<config>", source: SourceMap | Sources | None = None,
                 hosts: Resolved | None = None) -> Config:
    """Validate parsed TOML; every problem is collected before ConfigError is raised.

    With the `source` text's map, each line says where in the file the problem is; `hosts`
    holds the real servers' host names as `load_config` resolved them (None: names refused)."""
    errors: list[Problem] = []
    root = Section(data, (), errors)
    global_section, ipvs_section = root.table("global"), root.table("ipvs")
    global_ = _global(global_section) if global_section else GlobalConfig()
    ipvs = _ipvs(ipvs_section) if ipvs_section else IpvsConfig()
    virtual_servers = tuple(_virtual_server(s, hosts) for s in root.tables("virtual_server"))
    vs_names = {vs.name for vs in virtual_servers}
    scripts, files = load_tracking.vrrp_scripts(root), load_tracking.track_files(root)
    processes = load_tracking.track_processes(root)
    tracked = load_tracking.instance_readers({s.name: s for s in scripts}, {f.name: f for f in files},
                                             {p.name: p for p in processes})
    instances = tuple(_vrrp_instance(s, vs_names, tracked) for s in root.tables("vrrp_instance"))
    groups = tuple(_vrrp_sync_group(s) for s in root.tables("vrrp_sync_group"))
    root.finish()
    fragments = tuple(source.paths[1:]) if isinstance(source, Sources) else ()
    config = Config(path, global_, ipvs, virtual_servers, _with_shared(instances, groups, global_),
                    vrrp_sync_groups=groups, vrrp_scripts=scripts, track_files=files, track_processes=processes,
                    fragments=fragments)
    errors.extend(_cross_checks(config))
    errors.extend(load_tracking.unique_names(scripts, files, processes))
    if errors:
        raise ConfigError(render(errors, path, data, source))
    return config


# --- [global] and [ipvs] ------------------------------------------------------


def _listen(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    value = text(s, key, default, choices)
    if value and not _valid_listen(value):
        s.error(key, f'"{value}" must be "HOST:PORT", "[V6]:PORT" or "" to disable')
    return value


def _valid_listen(value: str) -> bool:
    match = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(\d{1,5})", value)
    return bool(match) and 0 < int(match.group(2)) < 65536


_GLOBAL: dict[str, Reader] = {
    "metrics_listen": _listen,
    "router_id": text,
    "control_socket": text,
    "state_dir": text,
    "reconcile_interval": duration(minimum=0.1),
    "audit_period": duration(minimum=0.1),
    "log_level": text,
    "log_format": text,
    "log_file": lambda s, key, default, choices: _absolute_path(s, key, text(s, key, default, choices)),
    "log_facility": text,
    "vrrp_realtime_priority": integer(0, 99),
    "notify_fifo": lambda s, key, default, choices: _absolute_path(s, key, text(s, key, default, choices)),
    "script_security": boolean,
    "auto_reload": boolean,
    "vrrp_strict": boolean,
    **GLOBAL_MAIL,  # email alerts: director.config.mail_keys
}


def _absolute_path(s: Section, key: str, value: Any) -> Any:
    if value and not (isinstance(value, str) and value.startswith("/")):
        s.error(key, "must be an absolute path")
    return value


def _global(s: Section) -> GlobalConfig:
    result = GlobalConfig(**read_fields(s, GlobalConfig, _GLOBAL))
    if s.raw("smtp_alert_sync_groups", None) is not None:  # a key of earlier versions
        s.error("smtp_alert_sync_groups", "moved: set smtp_alert in the group's [[vrrp_sync_group]] table")
    s.finish()
    return result


_IPVS: dict[str, Reader] = {
    "expire_nodest_conn": boolean,
    "expire_quiescent_template": boolean,
    "conntrack": boolean,
    "on_stop": text,
}
# IpvsConfig.timeout_X is key X of [ipvs.timeouts]
_TIMEOUT_PREFIX = "timeout_"
_TIMEOUTS: dict[str, Reader] = {
    name.removeprefix(_TIMEOUT_PREFIX): duration(minimum=1, maximum=MONTH, step=1)
    for name in (spec.name for spec in dataclasses.fields(IpvsConfig)) if name.startswith(_TIMEOUT_PREFIX)
}


def _ipvs(s: Section) -> IpvsConfig:
    timeouts = _timeouts(s.table("timeouts"))
    sync = s.table("sync_daemon")
    sync_daemon = _sync_daemon(sync) if sync else None
    result = IpvsConfig(**timeouts, sync_daemon=sync_daemon, **read_fields(s, IpvsConfig, _IPVS))
    s.finish()
    return result


def _timeouts(s: Section | None) -> dict[str, float | None]:
    if s is None:
        return {}
    defaults = {key: field_default(IpvsConfig, _TIMEOUT_PREFIX + key) for key in _TIMEOUTS}
    values = {key: read(s, key, defaults[key], ()) for key, read in _TIMEOUTS.items()}
    s.finish()
    return {_TIMEOUT_PREFIX + key: value for key, value in values.items()}


_SYNC_DAEMON: dict[str, Reader] = {
    "interface": text,
    "syncid": integer(0, 255),
    "mcast_group": address,
    "mcast_port": integer(1, 65535),
    "mcast_ttl": integer(1, 255),
    "max_packet_size": integer(0, 65535),
    "instance": text,
}


def _sync_daemon(s: Section) -> SyncDaemonConfig:
    result = SyncDaemonConfig(**read_fields(s, SyncDaemonConfig, _SYNC_DAEMON))
    if result.interface is not None:
        _check_ifname(s, "interface", result.interface)
    s.finish()
    return result


IFNAMSIZ = 16  # the kernel's, with the NUL


def _check_ifname(s: Section, key: str, name: str) -> None:
    if not re.fullmatch(r"[^\s/:]{1,15}", name):
        s.error(key, f'"{name}" is not a valid interface name')


# --- [[virtual_server]] ---------------------------------------------------------


def _family_name(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    return s.string(key, default, choices=tuple(FAMILY_NAMES))


_IDENTITY: dict[str, Reader] = {
    "name": required(text, ""),
    "address": address,
    "fwmark": integer(1, U32),
    "protocol": text,
    "family": _family_name,
    "persistence_timeout": duration(maximum=MONTH, step=1),
    "port": read_port(0),
}
# fields the model requires but a service may leave out: which of them apply follows
# from the others (an address service has no fwmark, a fwmark service no address/port)
_IDENTITY_DEFAULTS = {"address": None, "fwmark": 0, "family": None, "port": None}
_SERVICE_REST: dict[str, Reader] = {
    "quorum": integer(0, 2**31),
    "on_failure": text,
    "slow_start": duration(maximum=DAY),
    "drain_timeout": duration(maximum=7 * DAY),
    "hysteresis": integer(0, 2**31),
    "quorum_up": lambda s, key, default, choices: _notify(s, key, default, choices),
    "quorum_down": lambda s, key, default, choices: _notify(s, key, default, choices),
    "omega": boolean,
    **SMTP_ALERT,
}


def _virtual_server(s: Section, hosts: Resolved | None = None) -> VirtualServerConfig:
    ident = read_fields(s, VirtualServerConfig, _IDENTITY, _IDENTITY_DEFAULTS)
    _check_identity(s, ident)
    family = _family(ident)
    port = ident["port"] or 0
    scheduling = _scheduling(s, family, ident["protocol"], ident["persistence_timeout"])
    check = _service_check(s, ident["protocol"])
    real_servers = tuple(_real_server(r, family, port, ident["protocol"], hosts) for r in s.tables("real_server"))
    sorry = _sorry_server(s, family, port)
    result = VirtualServerConfig(
        **(ident | {"family": family, "port": 0 if ident["fwmark"] else port}),
        **scheduling,
        sorry_server=sorry,
        check=check,
        real_servers=real_servers,
        **read_fields(s, VirtualServerConfig, _SERVICE_REST),
    )
    _check_real_servers(s, result)
    _check_needs_port(s, result)
    _check_sources(s, result)
    s.finish()
    return result


def _check_identity(s: Section, ident: dict[str, Any]) -> None:
    """An address service or a fwmark service, never both or neither."""
    address, fwmark = ident["address"], ident["fwmark"]
    if address is not None and fwmark:
        s.error("fwmark", "set either address/port or fwmark, not both")
    elif address is None and not fwmark and not s.has("address"):
        s.error("address", "is required (or set fwmark for a firewall-mark service)")
    if address is not None and s.has("family") and ident["family"] != f"ipv{address.version}":
        s.error("family", f"does not match address {address}")
    _check_service_port(s, ident)


def _check_service_port(s: Section, ident: dict[str, Any]) -> None:
    port = ident["port"]  # None when left out or invalid (reported already)
    all_ports = port == 0 or not s.has("port")
    if ident["address"] is not None and not port and not ident["persistence_timeout"] and all_ports:
        s.error("port", "is required (port 0 means all ports and needs persistence_timeout)")
    if ident["fwmark"] and s.has("port"):
        s.error("port", "does not apply to fwmark services")


def _family(ident: dict[str, Any]) -> int:
    """The address's family; for a fwmark service the one named, IPv4 unless told."""
    if ident["address"] is not None:
        return ident["address"].version
    return FAMILY_NAMES.get(ident["family"], 4)


def _scheduling(s: Section, family: int, protocol: str, persistence: float) -> dict[str, Any]:
    scheduler = read_field(s, VirtualServerConfig, "scheduler", text)
    flags = _scheduler_flags(s, scheduler)
    method = read_field(s, VirtualServerConfig, "method", text)
    netmask = read_field(s, VirtualServerConfig, "persistence_netmask", integer(0, 32 if family == 4 else 128))
    if netmask is not None and not persistence:
        s.error("persistence_netmask", "needs persistence_timeout")
    one_packet = read_field(s, VirtualServerConfig, "one_packet", boolean)
    if one_packet and protocol != "udp":
        s.error("one_packet", "applies only to udp services")
    return {"scheduler": scheduler, "scheduler_flags": flags, "method": method,
            "persistence_netmask": netmask, "one_packet": one_packet}


def _scheduler_flags(s: Section, scheduler: str) -> tuple[str, ...]:
    flags = tuple(s.string_list("scheduler_flags", []) or [])
    for index, flag in enumerate(flags):
        known = SCHEDULER_FLAGS.get(flag)
        if known is None:
            s.error(f"scheduler_flags[{index}]", f'"{flag}" is not one of {", ".join(SCHEDULER_FLAGS)}')
        elif scheduler != known.scheduler:
            s.error(f"scheduler_flags[{index}]", f'"{flag}" applies only to the {known.scheduler} scheduler')
    return flags


def _check_needs_port(s: Section, vs: VirtualServerConfig) -> None:
    check = vs.check
    if s.has("port") and vs.port == 0 and not vs.fwmark:
        return  # the service port itself was refused (reported): the real servers' 0 is its echo
    if _needs_port(check) and any(rs.port == 0 and not rs.checks for rs in vs.real_servers):
        s.error("check.port", f"is required: {check.type} checks need a port and some real servers have port 0")
    for index, rs in enumerate(vs.real_servers):
        for which, own in enumerate(rs.checks):
            if rs.port == 0 and _needs_port(own):
                s.error(f"real_server[{index}].checks[{which}].port",
                        f"is required: {own.type} checks need a port and this real server has port 0")


def _needs_port(check: CheckConfig) -> bool:
    return check.type in PORT_CHECK_TYPES and check.port is None


def _check_sources(s: Section, vs: VirtualServerConfig) -> None:
    """A probe's source address must be of the family of the address it probes."""
    for index, rs in enumerate(vs.real_servers):
        for which, check in enumerate(vs.checks_of(rs)):
            probed = check.address or rs.address
            if check.bind_address is not None and check.bind_address.version != probed.version:
                path = f"real_server[{index}].checks[{which}]" if rs.checks else "check"
                s.error(f"{path}.bind_address", f"{check.bind_address} is IPv{check.bind_address.version} but the "
                        f"probed address {probed} is IPv{probed.version}")


_REAL_SERVER: dict[str, Reader] = {
    "weight": integer(0, MAX_WEIGHT),
    "method": text,
    "upper_threshold": integer(0, U32),
    "lower_threshold": integer(0, U32),
    "tunnel_type": text,
    "tunnel_port": integer(0, 65535),
    "tunnel_checksum": text,
    "notify_up": lambda s, key, default, choices: _notify(s, key, default, choices),
    "notify_down": lambda s, key, default, choices: _notify(s, key, default, choices),
    **SMTP_ALERT,
    "virtualhost": text,
}
_NO_ADDRESS = ipaddress.ip_address("0.0.0.0")  # stands in for a missing or bad one (reported)


def _real_server(s: Section, family: int, service_port: int, protocol: str = "tcp",
                 hosts: Resolved | None = None) -> RealServerConfig:
    address = read_field(s, RealServerConfig, "address", _address_of_family(family, hosts))
    # the port defaults to the service's; a service on all ports (0) lets its real servers keep 0
    port = read_field(s, RealServerConfig, "port", read_port(0 if service_port == 0 else 1), service_port)
    checks = tuple(_check(c, protocol) for c in s.tables("checks"))
    result = RealServerConfig(address=address or _NO_ADDRESS, port=port, checks=checks,
                              **read_fields(s, RealServerConfig, _REAL_SERVER))
    if result.upper_threshold and result.lower_threshold > result.upper_threshold:
        s.error("lower_threshold", f"{result.lower_threshold} is above upper_threshold {result.upper_threshold}")
    if result.tunnel_type == "gue" and not result.tunnel_port:
        s.error("tunnel_port", "is required for tunnel_type gue")
    s.finish()
    return result


def _address_of_family(family: int, hosts: Resolved | None = None) -> Reader:
    """An address of the service's family; with `hosts`, also a host name resolved to one."""
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        raw = s.raw(key, None)
        if isinstance(raw, str) and hosts is not None and is_host_name(raw):
            return _host_address(s, key, raw, family, hosts)
        value = s.address(key, default)
        if value is not None and value.version != family:
            s.error(key, f"{value} is IPv{value.version} but the virtual server is IPv{family}")
        return value
    return read


def _host_address(s: Section, key: str, name: str, family: int, hosts: Resolved) -> IPAddress | None:
    """The first address of `family` the name resolved to."""
    found = hosts.get(name, "was not resolved")
    if isinstance(found, str):
        s.error(key, f'"{name}" {found}')
        return None
    mine = [address for address in found if address.version == family]
    if not mine:
        s.error(key, f'"{name}" has no IPv{family} address (it resolves to {", ".join(map(str, found))})')
        return None
    return mine[0]


def _tunnel_options(rs: RealServerConfig) -> bool:
    """Whether tunnel_type or tunnel_port differ from their defaults (tunnel_checksum is not judged)."""
    return any(getattr(rs, name) != field_default(RealServerConfig, name) for name in ("tunnel_type", "tunnel_port"))


def _check_real_servers(s: Section, vs: VirtualServerConfig) -> None:
    seen: set[tuple[str, int]] = set()
    for index, rs in enumerate(vs.real_servers):
        key = (str(rs.address), rs.port)
        if key in seen:
            s.error(f"real_server[{index}]", f"{rs.endpoint} is listed twice")
        seen.add(key)
        method = rs.method or vs.method
        if method != "tun" and _tunnel_options(rs):
            s.error(f"real_server[{index}].tunnel_type", "tunnel options need method = \"tun\"")
        if method in ("dr", "tun") and vs.port and rs.port != vs.port:
            s.error(f"real_server[{index}].port",
                    f"{method} cannot change the port ({rs.port} != service port {vs.port})")
        if rs.virtualhost is not None and vs.check.type not in ("http", "https"):
            s.error(f"real_server[{index}].virtualhost", f'needs an http or https check, not type "{vs.check.type}"')
        else:
            _request_safe(s, f"real_server[{index}].virtualhost", rs.virtualhost)


def _sorry_server(s: Section, family: int, service_port: int) -> RealServerConfig | None:
    value = s.raw("sorry_server", None)
    if value is None:
        return None
    if isinstance(value, dict):
        sub = Section(value, s.key_path("sorry_server"), s.errors)
        if sub.has("checks"):
            sub.error("checks", "a sorry server is never checked: it serves only while no real server can")
        return _real_server(sub, family, service_port)
    if not isinstance(value, str):
        s.error("sorry_server", 'must be "ADDRESS:PORT" or a table')
        return None
    return _sorry_endpoint(s, value, family, service_port)


def _sorry_endpoint(s: Section, value: str, family: int, service_port: int) -> RealServerConfig | None:
    """The short form "ADDRESS[:PORT]"; the port defaults to the service's."""
    try:
        address_text, port = parse_endpoint(value)
    except ValueError as exc:
        s.error("sorry_server", str(exc))
        return None
    address = ipaddress.ip_address(address_text)
    if address.version != family:
        s.error("sorry_server", f"{address} is IPv{address.version} but the virtual server is IPv{family}")
    return RealServerConfig(address=address, port=service_port if port is None else port)


# --- [virtual_server.check] -----------------------------------------------------------


def _service_check(s: Section, protocol: str) -> CheckConfig:
    section = s.table("check")
    return _check(section, protocol) if section else field_default(VirtualServerConfig, "check")


def _check(s: Section, protocol: str) -> CheckConfig:
    # a [check] table on a tcp service checks tcp unless told otherwise
    kind_default = "tcp" if protocol == "tcp" else field_default(CheckConfig, "type")
    kind = read_field(s, CheckConfig, "type", text, kind_default)
    for option, types in CHECK_OPTION_TYPES.items():
        if s.has(option) and kind not in types:
            s.error(option, f'applies only to {"/".join(types)} checks, not type "{kind}"')
    interval = read_field(s, CheckConfig, "interval", duration(0.01, 3600.0))
    readers = _CHECK | HTTP_CHECK | {"urls": _URLS} | ({"command": _exec_command} if kind == "exec" else {})
    # the timeout defaults to no more than the interval
    timeout = min(field_default(CheckConfig, "timeout"), interval)
    result = CheckConfig(type=kind, interval=interval, **read_fields(s, CheckConfig, readers, {"timeout": timeout}))
    if isinstance(result.path, str) and not result.path.startswith("/"):
        s.error("path", f'must start with "/", got "{result.path}"')
    if result.sip_uri is not None and not re.match(r"sips?:", result.sip_uri):
        s.error("sip_uri", f'must start with "sip:" or "sips:", got "{result.sip_uri}"')
    _login_problems(s, result)
    for key in ("path", "host", "sip_uri"):
        _request_safe(s, key, getattr(result, key))
    http_problems(s, result)
    s.finish()
    return result


def _request_safe(s: Section, key: str, value: object) -> None:
    if isinstance(value, str) and _REQUEST_UNSAFE.search(value):
        # it goes into a request line or header: a space splits it, CR/LF would add headers
        s.error(key, f"must not contain spaces or control characters, got {value!r}")


def _check_url(s: Section, url: HttpUrl) -> None:
    """One [[...check.urls]] entry: its path and Host go into the request as the check's do."""
    if isinstance(url.path, str) and not url.path.startswith("/"):
        s.error("path", f'must start with "/", got "{url.path}"')
    for key in ("path", "host"):
        _request_safe(s, key, getattr(url, key))


_REQUEST_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


def _credential(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    """login, passwd, database, request, secret: each goes into one protocol line or field,
    where a control character (CR, LF, NUL) would end it or add another."""
    value = s.string(key, default)
    if isinstance(value, str) and re.search(r"[\x00-\x1f\x7f]", value):
        s.error(key, f"must not contain control characters (CR, LF, NUL, ...), got {value!r}")
        return default
    return value


def _secret_file(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    """The daemon's working directory is no place to resolve a relative path against."""
    return _absolute_path(s, key, _credential(s, key, default, choices))


def _login_problems(s: Section, check: CheckConfig) -> None:
    for inline, file in (("passwd", "passwd_file"), ("secret", "secret_file")):
        if getattr(check, inline) is not None and getattr(check, file) is not None:
            s.error(file, f"give {inline} or {file}, not both")
    if check.type in ("pgsql", "mysql", "ftp") and check.request and not check.login:
        s.error("request", "needs login: it is asked for once logged in")


def _send_bytes(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> bytes | None:
    value = s.string(key, None)
    return value.encode() if isinstance(value, str) else default


def _regex(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    pattern = s.string(key, default)
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
            risk = backtracking_risk(pattern)
        except re.error as exc:
            s.error(key, f"invalid regular expression: {exc}")
            return None
        except (OverflowError, RecursionError) as exc:  # a{4294967296}; groups nested hundreds deep
            reason = exc if isinstance(exc, OverflowError) else "groups nested too deeply"
            s.error(key, f"invalid regular expression: {reason}")
            return None
        if risk:
            s.error(key, f"{risk} ({pattern!r}); make the inner repeat possessive (a++) or atomic (?>...)")
            return None
    return pattern


def _status_ranges(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
    value = s.raw(key, None)
    if value is None:
        return default
    items = value if isinstance(value, list) else [value]
    ranges: list[tuple[int, int]] = []
    for index, item in enumerate(items):
        parsed = _status_range(item)
        if parsed is None:
            where = f"{key}[{index}]" if isinstance(value, list) else key
            s.error(where, f'must be a status code 100..699 or a range "200-299", got {item!r}')
            return default
        ranges.append(parsed)
    if not ranges:
        s.error(key, "must list at least one status")
    return tuple(ranges) or default


def _status_range(item: object) -> tuple[int, int] | None:
    if isinstance(item, int) and not isinstance(item, bool):
        low = high = item
    elif isinstance(item, str) and re.fullmatch(r"\d{3}(-\d{3})?", item):
        low, _, high_text = item.partition("-")
        low, high = int(low), int(high_text or low)
    else:
        return None
    return (low, high) if 100 <= low <= high <= 699 else None


def _command(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[str, ...]:
    value = s.raw(key, None)
    if value is None:
        return default
    if isinstance(value, str):
        s.error(key, 'must be an argv list such as ["/usr/bin/check", "arg"]; shell strings are not run')
        return default
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        s.error(key, "must be a non-empty list of non-empty strings")
        return default
    return tuple(value)


def _exec_command(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[str, ...]:
    """An exec check has nothing to run without one."""
    if s.raw(key, None) is None:
        s.error(key, 'is required for exec checks, e.g. ["/usr/local/bin/check-app", "--fast"]')
        return default
    return _command(s, key, default, choices)


_CHECK: dict[str, Reader] = {
    "timeout": duration(0.01, 3600.0),
    "rise": integer(1, 1000),
    "fall": integer(1, 1000),
    "initial": text,
    "transition_interval": duration(0.01, 3600.0),
    "jitter": number(0.0, 1.0),
    "port": read_port(1),
    "send": _send_bytes,
    "expect": _regex,
    "method": text,
    "path": text,
    "host": text,
    "expect_status": _status_ranges,
    "expect_body": _regex,
    "max_body": integer(1, MAX_BODY_LIMIT),
    "tls_verify": boolean,
    "sni": text,
    "transport": text,
    "sip_uri": text,
    "command": _command,
    "dynamic_weight": boolean,
    "address": address,
    "bind_address": address,
    "bind_interface": lambda s, key, default, choices: _ifname(s, key, default, choices),
    "login": _credential,
    "passwd": _credential,
    "passwd_file": _secret_file,
    "database": _credential,
    "request": _credential,
    "receive": _regex,
    "secret": _credential,
    "secret_file": _secret_file,
}
_CHECK |= {  # dns, udp, smtp (issue 19)
    "require_reply": boolean,
    "query_name": lambda s, key, default, choices: _dns_name(s, key, default),
    "query_type": text,
    "query_class": text,
    "expect_rcode": text,
    "helo_name": lambda s, key, default, choices: _helo_name(s, key, default),
}


def _dns_name(s: Section, key: str, default: str) -> str:
    """A query name as dotted text: labels of 1..63 bytes, 255 in all (RFC 1035 2.3.4)."""
    value = s.string(key, default)
    if not isinstance(value, str):
        return default
    problem = _dns_name_problem(value)
    if problem:
        s.error(key, f"{problem}, got {value!r}")
        return default
    return value


def _dns_name_problem(name: str) -> str:
    if not name.isascii() or any(c.isspace() or not c.isprintable() for c in name):
        return "must be ASCII without spaces or control characters"
    labels = [] if name == "." else name.removesuffix(".").split(".")
    if any(not label for label in labels):
        return "has an empty label (two dots in a row, or a leading dot)"
    if any(len(label) > 63 for label in labels):
        return "has a label longer than 63 characters"
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        return "is longer than 255 bytes"
    return ""


_HELO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


def _helo_name(s: Section, key: str, default: str | None) -> str | None:
    """It goes on the EHLO line: a domain or an address literal, nothing that could end the line."""
    value = s.string(key, default)
    if isinstance(value, str) and not _HELO_NAME.fullmatch(value):
        s.error(key, f'must be a host name or an address literal such as "[192.0.2.1]", got {value!r}')
        return default
    return value


_URLS = urls_reader(url_readers(text, _status_ranges, _regex), _check_url)


# --- [[vrrp_instance]] ------------------------------------------------------------

# advert_interval bounds per VRRP version: v2 counts whole seconds, v3 centiseconds
_ADVERT_INTERVAL: dict[int, Reader] = {
    2: duration(minimum=1, maximum=255, step=1),
    3: duration(minimum=0.01, maximum=40.95, step=0.01),
}


def _vrrp_instance(s: Section, vs_names: set[str], tracked: dict[str, Reader]) -> VrrpInstanceConfig:
    """`tracked` reads the references to scripts and files (`director.config.load_tracking`)."""
    head = _vrrp_head(s)
    family = head["virtual_ips"][0].version if head["virtual_ips"] else 4
    head |= _carried(s, head["interface"], head.pop("address_options"))
    readers = _vrrp_readers(family, vs_names) | tracked
    result = VrrpInstanceConfig(**head, **read_fields(s, VrrpInstanceConfig, readers))
    if result.v3_checksum_as_v2 and (result.version != 3 or family != 4):
        s.error("v3_checksum_as_v2", "applies only to version 3 with IPv4")
    if result.unicast_src is not None and result.unicast_src.version != family:
        s.error("unicast_src", f"{result.unicast_src} is not IPv{family} like virtual_ips")
    if result.unicast_min_ttl > result.unicast_max_ttl:
        s.error("unicast_min_ttl", f"{result.unicast_min_ttl} is above unicast_max_ttl ({result.unicast_max_ttl})")
    if not result.unicast_peers and (result.unicast_ttl, result.unicast_min_ttl, result.unicast_max_ttl) != (
            255, 255, 255):
        s.error("unicast_ttl", "applies only with unicast_peers: multicast adverts always carry TTL 255")
    if result.preempt_delay and not result.preempt:
        s.error("preempt_delay", "has no effect with preempt = false")
    _check_auth(s, result, family)
    _check_vmac(s, result, family)
    s.finish()
    return result


def _check_vmac(s: Section, vi: VrrpInstanceConfig, family: int) -> None:
    """The VMAC rules keepalived has."""
    if not vi.use_vmac:
        for key in ("vmac_interface", "vmac_xmit_base"):
            if s.has(key):
                s.error(key, "has no effect without use_vmac = true")
        return
    if len(vi.vmac_interface.encode()) > IFNAMSIZ - 1:
        s.error("vmac_interface", f'"{vi.vmac_interface}" is {len(vi.vmac_interface.encode())} bytes long; '
                f"interface names are at most {IFNAMSIZ - 1}")
    elif vi.vmac_interface:
        _check_ifname(s, "vmac_interface", vi.vmac_interface)
        if vi.vmac_interface == vi.interface:
            s.error("vmac_interface", f'"{vi.vmac_interface}" is the instance\'s interface: name a new macvlan')
    if vi.unicast_peers and not vi.vmac_xmit_base:
        s.error("use_vmac", "with unicast_peers needs vmac_xmit_base = true (keepalived requires it)")


def _check_auth(s: Section, vi: VrrpInstanceConfig, family: int) -> None:
    """Authentication exists in VRRPv2 only, over IPv4, and needs a password; AH is multicast only."""
    if vi.auth_type is None:
        if vi.auth_pass is not None and not s.has("auth_type"):  # a bad auth_type is reported already
            s.error("auth_pass", 'has no effect without auth_type ("pass" or "ah")')
    elif family == 6:
        if vi.version == 3:  # version 2 with IPv6 is refused already
            s.error("auth_type", "VRRP authentication exists only in version 2, which carries IPv4 only: "
                    "an IPv6 instance cannot authenticate")
    elif vi.version == 3:
        s.error("auth_type", "VRRP version 3 has no authentication (RFC 5798 removed it): set version = 2 "
                "to authenticate with a version-2 peer, or remove auth_type and auth_pass")
    elif vi.auth_pass is None and not s.has("auth_pass"):
        s.error("auth_pass", f'is required with auth_type = "{vi.auth_type}"')
    elif vi.auth_type == "ah" and vi.unicast_peers:
        s.error("auth_type", 'AH is supported over multicast only: use auth_type = "pass" with unicast_peers')


def _vrrp_head(s: Section) -> dict[str, Any]:
    """The keys the others are judged by: version, interface and virtual_ips."""
    version = read_field(s, VrrpInstanceConfig, "version", integer())
    interval = read_field(s, VrrpInstanceConfig, "advert_interval", _ADVERT_INTERVAL[version])
    interface = read_field(s, VrrpInstanceConfig, "interface", text)
    if isinstance(interface, str):
        _check_ifname(s, "interface", interface)
    entries = _virtual_ips(s, interface or "")
    vips = tuple(entry.address for entry, _table in entries)
    if version == 2 and vips and vips[0].version == 6:
        s.error("version", "VRRPv2 carries IPv4 only; use version = 3 for IPv6")
    return {"version": version, "advert_interval": interval, "interface": interface or "", "virtual_ips": vips,
            "address_options": entries}


def _vrrp_readers(family: int, vs_names: set[str]) -> dict[str, Reader]:
    def peers(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[IPAddress, ...]:
        return _peer_list(s, key, family)

    def tracked_services(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[Any, ...]:
        return _track_virtual_servers(s, key, vs_names)

    return {
        "name": required(text, ""),
        "vrid": required(integer(1, 255), 0),
        "priority": integer(1, 255),
        "preempt": boolean,
        "preempt_delay": duration(maximum=1000.0),
        "unicast_peers": peers,
        "unicast_src": address,
        "unicast_ttl": integer(1, 255),
        "unicast_min_ttl": integer(0, 255),
        "unicast_max_ttl": integer(0, 255),
        "auth_type": text,
        "auth_pass": _auth_pass,
        "garp": _garp,
        "track_interfaces": _track_interfaces,
        "track_own_interface": boolean,
        "track_virtual_servers": tracked_services,
        "notify": _notify,
        "notify_arguments": text,
        "notify_master": _notify,
        "notify_backup": _notify,
        "notify_fault": _notify,
        "notify_stop": _notify,
        "sync_group": text,
        "v3_checksum_as_v2": boolean,
        "check_advert_addresses": boolean,
        "adopt_master_interval": boolean,
        "use_vmac": boolean,
        "vmac_interface": text,
        "vmac_xmit_base": boolean,
        **SMTP_ALERT,
    }


def _auth_pass(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    value = s.string(key, default)
    if value == "":
        s.error(key, "must not be empty (keepalived then runs without authentication; directord refuses it)")
        return default
    if isinstance(value, str) and "\x00" in value:
        s.error(key, "must not contain a NUL character")
        return default
    return value


def _with_shared(instances: tuple[VrrpInstanceConfig, ...], groups: tuple[VrrpSyncGroupConfig, ...],
                 global_: GlobalConfig) -> tuple[VrrpInstanceConfig, ...]:
    """Each instance with its sync group's hooks and the notify FIFO, which the VRRP process
    needs and would otherwise have to be sent apart."""
    by_name = {group.name: group for group in groups}
    return tuple(dataclasses.replace(vi, sync_group_hooks=by_name.get(vi.sync_group or ""),
                                     notify_fifo=global_.notify_fifo) for vi in instances)


def _virtual_ips(s: Section, interface: str) -> list[tuple[VirtualAddress, bool]]:
    entries = _address_entries(s, "virtual_ips", interface)
    if entries is None:
        if not s.has("virtual_ips"):
            s.error("virtual_ips", "is required (at least one address)")
        return []
    if not entries and not s.data["virtual_ips"]:
        s.error("virtual_ips", "must list at least one address")
    if len({entry.address.version for entry, _table in entries}) > 1:
        s.error("virtual_ips", "mixes IPv4 and IPv6; use one instance per address family (or put the other "
                "family in excluded_ips)")
    return entries


# --- [[vrrp_instance]]: what moves with mastership (virtual_ips entries, excluded_ips, routes, rules)

def _carried(s: Section, interface: str, vip_entries: list[tuple[VirtualAddress, bool]]) -> dict[str, Any]:
    """excluded_ips, virtual_routes and virtual_rules, and the options of every address entry
    written as a table (`VrrpInstanceConfig.address_options`)."""
    excluded = _address_entries(s, "excluded_ips", interface) or []
    seen = {entry.address.ip for entry, _table in vip_entries}
    for index, (entry, _table) in enumerate(excluded):
        if entry.address.ip in seen:
            s.error(f"excluded_ips[{index}]", f"{entry.address.ip} is already listed (in virtual_ips or excluded_ips)")
        seen.add(entry.address.ip)
    routes = tuple(_route(sub) for sub in _entry_tables(s, "virtual_routes"))
    rules = tuple(_rule(sub) for sub in _entry_tables(s, "virtual_rules"))
    return {"excluded_ips": tuple(entry.address for entry, _table in excluded),
            "virtual_routes": tuple(r for r in routes if r is not None),
            "virtual_rules": tuple(r for r in rules if r is not None),
            "address_options": tuple(entry for entry, table in (*vip_entries, *excluded) if table)}


def _address_entries(s: Section, key: str, interface: str) -> list[tuple[VirtualAddress, bool]] | None:
    """Entries given as "ADDRESS[/PREFIX]" or { address = "...", dev = ..., ... }, each with whether
    it was a table; invalid ones are reported and left out. None when the key is absent."""
    value = s.raw(key, None)
    if value is None:
        return None
    if not isinstance(value, list):
        s.error(key, 'must be a list of addresses such as ["192.0.2.10/24"] or { address = "192.0.2.10/24", ... }')
        return []
    entries = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if isinstance(item, str):
            address = _interface_text(s, where, item)
            if address is not None:
                entries.append((VirtualAddress(address), False))
        elif isinstance(item, dict):
            entry = _address_table(Section(item, s.key_path(where), s.errors), interface)
            if entry is not None:
                entries.append((entry, True))
        else:
            s.error(where, 'must be an address string or a table such as { address = "192.0.2.10/24", dev = "eth1" }')
    return entries


def _interface_text(s: Section, key: str, item: str) -> IPInterface | None:
    try:
        return parse_interface(item)
    except ValueError:
        s.error(key, f'"{item}" is not an address with optional /prefix')
        return None


def _broadcast(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    """An IPv4 address, or "+" / "-" for the prefix's address with all host bits set / clear (as keepalived)."""
    value = s.string(key, None)
    if value is None or value in ("+", "-"):
        return value
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        s.error(key, f'"{value}" is not an IPv4 address, "+" or "-"')
        return None


def _address(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> IPInterface | None:
    value = s.string(key)
    return _interface_text(s, key, value) if isinstance(value, str) else None


_ADDRESS_TABLE: dict[str, Reader] = {
    "address": _address,
    "dev": text,
    "broadcast": _broadcast,
    "scope": text,
    "label": text,
    "noprefixroute": boolean,
}


def _address_table(s: Section, interface: str) -> VirtualAddress | None:
    values = read_fields(s, VirtualAddress, _ADDRESS_TABLE)
    s.finish()
    address = values["address"]
    if address is None:
        return None
    dev = values["dev"] or ""
    if dev:
        _check_ifname(s, "dev", dev)
    if address.version == 6:
        for key, what in (("broadcast", "broadcast addresses"), ("label", "labels")):
            if values[key]:
                s.error(key, f"applies to IPv4 addresses only: IPv6 has no {what}")
        if s.has("scope") and values["scope"] != field_default(VirtualAddress, "scope"):
            s.error("scope", "applies to IPv4 addresses only (the kernel derives an IPv6 address's scope "
                    "from the address)")
        values |= {"broadcast": None, "label": "", "scope": field_default(VirtualAddress, "scope")}
    elif values["broadcast"] in ("+", "-"):
        network = address.network
        values["broadcast"] = network.broadcast_address if values["broadcast"] == "+" else network.network_address
    label = values["label"] or ""
    if label:
        _check_label(s, label, dev or interface)
    return VirtualAddress(**(values | {"dev": dev, "label": label}))


def _check_label(s: Section, label: str, dev: str) -> None:
    """The kernel keeps at most 15 bytes; `ifconfig` and `ip addr` take DEV:NAME for an alias of DEV."""
    if len(label.encode()) > 15:
        s.error("label", f'"{label}" is longer than 15 bytes')
    elif dev and label != dev and not label.startswith(dev + ":"):
        s.error("label", f'"{label}" must start with the device name: "{dev}" or "{dev}:NAME"')


def _entry_tables(s: Section, key: str) -> list[Section]:
    """A list of inline tables (virtual_routes = [{...}, ...])."""
    if s.raw(key, None) is None:
        return []
    return s.tables(key)


def _network(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    value = s.string(key, default)
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.ip_network(value)
    except ValueError as exc:
        reason = "has host bits set" if "host bits" in str(exc) else "is not a network ADDRESS[/PREFIX]"
        s.error(key, f'"{value}" {reason}')
        return None


_ROUTE: dict[str, Reader] = {
    "to": required(_network, None),
    "type": text,
    "via": address,
    "dev": text,
    "src": address,
    "metric": integer(0, U32),
    "table": integer(1, U32),
    "scope": text,
}
# route types that drop or hand back the packet: no gateway and no device (the kernel refuses them)
_NO_NEXTHOP = ("blackhole", "unreachable", "prohibit", "throw")


def _route(s: Section) -> VirtualRoute | None:
    values = read_fields(s, VirtualRoute, _ROUTE)
    s.finish()
    to, kind = values["to"], values["type"]
    if to is None or kind is None:
        return None
    if values["dev"]:
        _check_ifname(s, "dev", values["dev"])
    for key in ("via", "src"):
        if values[key] is not None and values[key].version != to.version:
            s.error(key, f"{values[key]} is not IPv{to.version} like to = \"{to}\"")
    if kind in _NO_NEXTHOP:
        for key in ("via", "dev"):
            if values[key]:
                s.error(key, f'does not apply to a {kind} route (it has no next hop)')
    elif kind == "local" and not values["dev"]:
        s.error("dev", "is required for a local route")
    elif kind == "unicast" and values["via"] is None and not values["dev"]:
        s.error("to", "needs via or dev: a unicast route goes through a gateway or out of a device")
    return VirtualRoute(**(values | {"dev": values["dev"] or "", "metric": values["metric"] or 0,
                                     "table": values["table"] or MAIN_TABLE}))


def _rule_family(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    name = s.string(key, None, choices=tuple(FAMILY_NAMES))
    return FAMILY_NAMES.get(name) if name is not None else default


def _ifname(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    value = text(s, key, default, choices)
    if value:
        _check_ifname(s, key, value)
    return value


_RULE: dict[str, Reader] = {
    "table": required(integer(1, U32), MAIN_TABLE),
    "from_": lambda s, key, default, choices: _network(s, "from", default, choices),
    "to": _network,
    "priority": integer(0, U32),
    "iif": _ifname,
    "oif": _ifname,
    "fwmark": integer(0, U32),
    "fwmask": integer(0, U32),
    "family": _rule_family,
}


def _rule(s: Section) -> VirtualRule | None:
    """A rule table; its key `from` is the field `from_` (a Python keyword)."""
    values = read_fields(s, VirtualRule, _RULE)
    s.finish()
    networks = [net for net in (values["from_"], values["to"]) if net is not None]
    families = {net.version for net in networks} | ({values["family"]} if values["family"] else set())
    if len(families) > 1:
        s.error("family" if values["family"] else "to", "mixes IPv4 and IPv6")
        return None
    if values["fwmask"] is not None and not values["fwmark"]:
        s.error("fwmask", "needs fwmark")
    return VirtualRule(**(values | {"iif": values["iif"] or "", "oif": values["oif"] or "",
                                    "fwmark": values["fwmark"] or 0}))


def _peer_list(s: Section, key: str, family: int) -> tuple[IPAddress, ...]:
    peers = []
    for index, item in enumerate(s.string_list(key, []) or []):
        try:
            peer = ipaddress.ip_address(item)
        except ValueError:
            s.error(f"{key}[{index}]", f'"{item}" is not an address')
            continue
        if peer.version != family:
            s.error(f"{key}[{index}]", f"{peer} is not IPv{family} like virtual_ips")
        peers.append(peer)
    return tuple(peers)


_GARP: dict[str, Reader] = {
    "repeat": integer(0, 100),
    "interval": duration(maximum=60.0),
    "delay": duration(maximum=DAY),
    "refresh": duration(maximum=DAY),
    "refresh_repeat": integer(1, 100),
    "lower_prio_repeat": integer(0, 100),
    "lower_prio_delay": duration(maximum=DAY),
}


def _garp(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> GarpConfig:
    table = s.table(key)
    if table is None:
        return default
    result = GarpConfig(**read_fields(table, GarpConfig, _GARP))
    table.finish()
    return result


def _track_interfaces(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[TrackInterface, ...]:
    return tuple(TrackInterface(*item) for item in _name_weight_items(s, key, TrackInterface) if item)


def _track_virtual_servers(s: Section, key: str, vs_names: set[str]) -> tuple[TrackVirtualServer, ...]:
    tracked = []
    for index, item in enumerate(_name_weight_items(s, key, TrackVirtualServer)):
        if item and item[0] not in vs_names:
            s.error(f"{key}[{index}].name", f'no virtual_server is named "{item[0]}"')
        elif item:
            tracked.append(TrackVirtualServer(*item))
    return tuple(tracked)


def _name_weight_items(s: Section, key: str, model: type) -> list[tuple[str, int] | None]:
    """Entries given as "name" or {name = "...", weight = N}; None marks an invalid one."""
    value = s.raw(key, [])
    if not isinstance(value, list):
        s.error(key, "must be a list")
        return []
    weight = field_default(model, "weight")
    return [_name_weight(s, f"{key}[{index}]", entry, weight) for index, entry in enumerate(value)]


def _name_weight(s: Section, key: str, entry: object, weight: int) -> tuple[str, int] | None:
    if isinstance(entry, str):
        return (entry, weight)
    if not isinstance(entry, dict):
        s.error(key, 'must be a name or {name = "...", weight = N}')
        return None
    sub = Section(entry, s.key_path(key), s.errors)
    name, weight = sub.string("name"), sub.integer("weight", weight, -254, 254)
    sub.finish()
    return (name, weight) if name else None


def _notify(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[str, ...]:
    value = s.raw(key, None)
    if value is None:
        return default
    if isinstance(value, str):
        if not value or any(ch.isspace() for ch in value):
            s.error(key, 'must be a program path or an argv list such as ["/usr/bin/x", "--flag"]; '
                    "shell strings are not run")
            return default
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    s.error(key, "must be a program path or a non-empty list of strings")
    return default


_SYNC_GROUP: dict[str, Reader] = {
    "name": required(text, ""),
    "notify": _notify,
    "notify_arguments": text,
    "notify_master": _notify,
    "notify_backup": _notify,
    "notify_fault": _notify,
    **SMTP_ALERT,
}


def _vrrp_sync_group(s: Section) -> VrrpSyncGroupConfig:
    result = VrrpSyncGroupConfig(**read_fields(s, VrrpSyncGroupConfig, _SYNC_GROUP))
    s.finish()
    return result


# --- checks across sections -------------------------------------------------------


def _cross_checks(config: Config) -> list[Problem]:
    errors: list[Problem] = []
    _unique(errors, "virtual_server", [vs.name for vs in config.virtual_servers], "name")
    _unique(errors, "virtual_server", [vs.label for vs in config.virtual_servers], "address")
    _unique(errors, "vrrp_instance", [vi.name for vi in config.vrrp_instances], "name")
    _unique(errors, "vrrp_instance",
            [f"vrid {vi.vrid} on {vi.interface} (IPv{vi.family})" for vi in config.vrrp_instances],
            "vrid")
    # one VMAC per virtual router: vrrp.51 of two interfaces would be one link (name it with vmac_interface)
    _unique(errors, "vrrp_instance", [vi.vmac_name for vi in config.vrrp_instances], "vmac_interface")
    _unique(errors, "vrrp_sync_group", [group.name for group in config.vrrp_sync_groups], "name")
    sync = config.ipvs.sync_daemon
    named = {vi.name for vi in config.vrrp_instances}
    if sync is not None and sync.instance is not None and sync.instance not in named:
        errors.append(Problem(("ipvs", "sync_daemon", "instance"), f'no vrrp_instance is named "{sync.instance}"'))
    used = {vi.sync_group for vi in config.vrrp_instances}
    errors += [Problem(("vrrp_sync_group", index, "name"), f"no vrrp_instance has sync_group = \"{group.name}\"")
               for index, group in enumerate(config.vrrp_sync_groups) if group.name not in used]
    if config.global_.vrrp_strict:
        errors += _strict_problems(config.vrrp_instances)
    return errors


def _strict_problems(instances: tuple[VrrpInstanceConfig, ...]) -> list[Problem]:
    """[global] vrrp_strict: what RFC 5798 has no room for, as keepalived's vrrp_strict refuses it."""
    errors = []
    for index, vi in enumerate(instances):
        rules = (("auth_type", vi.auth_type is not None, "RFC 5798 has no authentication"),
                 ("unicast_peers", bool(vi.unicast_peers), "RFC 5798 sends adverts to the multicast group only"),
                 ("preempt_delay", vi.preempt_delay > 0, "RFC 5798 preempts at once"),
                 ("vmac_xmit_base", vi.vmac_xmit_base, "RFC 5798 sends adverts from the virtual MAC"),
                 ("virtual_ips", not vi.virtual_ips, "RFC 5798 needs at least one address"))
        errors += [Problem(("vrrp_instance", index, key), f"not allowed with vrrp_strict: {why}")
                   for key, broken, why in rules if broken]
    return errors


def _unique(errors: list[Problem], table: str, values: list[str], key: str) -> None:
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        if not value:
            continue
        if value in first:
            errors.append(Problem((table, index, key), f"{value} is already used by an earlier {table}",
                                  see=(table, first[value])))
        else:
            first[value] = index
