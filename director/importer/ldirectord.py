"""ldirectord.cf -> directord config.

ldirectord's file is `key=value` lines: global ones first, then `virtual=`
lines each followed by an indented block of service options and `real=` lines.
Global check options are defaults that a virtual block may override, and the
last line of a key wins; so a section's lines are collected first (one table
says which keys a section takes) and a second table turns each setting into
output, in a fixed order, when the section ends.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from director.config.model import GlobalConfig, field_choices
from director.config.read import parse_duration, service_port
from director.config.resolve import is_host_name
from director.importer import Conversion, SourceError, seconds
from director.importer.common import Service, canonical_ip, endpoint, mask_to_prefix, read_source, to_float, to_int
from director.importer.table import Reader, Table

METHODS = {"gate": "dr", "masq": "nat", "ipip": "tun"}
# Options valid globally and per virtual service.
SHARED = ("checktimeout", "negotiatetimeout", "connecttimeout", "checkinterval", "failurecount",
          "quiescent", "fallback", "checktype", "service", "request", "receive", "httpmethod", "virtualhost",
          "checkport", "checkcommand", "fallbackcommand")
SHARED += ("login", "passwd", "database", "secret")  # the login checks' keys (issue 19)
SERVICE_ONLY = ("scheduler", "persistent", "netmask", "protocol")
SERVICE_PORTS = {80: "http", 443: "https"}
SERVICE_PORTS |= {25: "smtp", 53: "dns"}  # ldirectord's guess from the port (issue 19)
DEFAULT_NEGOTIATE_TIMEOUT = 30.0
DEFAULT_CHECK_TIMEOUT = 5.0
DEFAULT_CHECK_INTERVAL = 10.0
# Real servers that FIRST->LAST ranges expand to, all the ranges of a file together: one short
# line 0.0.0.0->255.255.255.255 would otherwise be four billion of them.
MAX_RANGE_ADDRESSES = 65536
_VALUE = re.compile(r'\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$')


@dataclass(frozen=True)
class _Line:
    """One `key=value` line; `keyword` is the key in lower case."""

    file: str
    line: int
    keyword: str
    value: str
    indented: bool


@dataclass
class _Virtual:
    """One virtual= section: the service being filled, its settings (key -> last line, starting
    from the global ones) and its real= lines."""

    header: _Line
    service: Service
    options: dict[str, _Line]
    reals: list[_Line] = field(default_factory=list)


@dataclass(frozen=True)
class _CheckSource:
    """What decides a section's check: checktype= and service= (or the port's usual service)."""

    kind: str
    kind_line: _Line | None
    service: str
    service_line: _Line | None
    options: dict[str, _Line]


def _strip_comment(raw: str) -> str:
    """Drop a `#` comment that is not inside double quotes."""
    quoted = False
    for index, char in enumerate(raw):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return raw[:index]
    return raw


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _lines(path: str, errors: list[str]) -> list[_Line]:
    try:
        text = read_source(path)
    except OSError as exc:
        raise SourceError([f"{path}: cannot read: {exc.strerror}"]) from exc
    result = []
    for number, raw in enumerate(text.splitlines(), 1):
        body = _strip_comment(raw)
        if not body.strip():
            continue
        match = _VALUE.match(body)
        if not match:
            errors.append(f"{path}:{number}: expected KEY=VALUE, got {body.strip()!r}")
            continue
        result.append(_Line(path, number, match.group(1).lower(), match.group(2), body[0].isspace()))
    return result


class _Ldirectord(Reader):
    """Reads ldirectord.cf lines: global defaults first, then one virtual= section at a time."""

    def __init__(self, conv: Conversion) -> None:
        super().__init__(conv)
        self.defaults: dict[str, _Line] = {}
        self.services: dict[tuple[Any, ...], dict[str, Any]] = {}  # (protocol, address, port, fwmark) -> output
        self.range_room = MAX_RANGE_ADDRESSES

    def run(self, lines: list[_Line]) -> None:
        """Global lines set defaults; each virtual= line owns the indented lines below it."""
        sections: list[tuple[_Line, list[_Line]]] = []
        for line in lines:
            if line.keyword == "virtual":
                sections.append((line, []))
            elif line.indented and sections:
                sections[-1][1].append(line)
            elif line.keyword == "real":
                self.bad(line, "real= must be indented under a virtual= line")
            elif line.keyword in SHARED:
                self.defaults[line.keyword] = line
            else:
                GLOBAL.read(self, line, self.conv.config)
        for header, body in sections:
            self.virtual(header, body)

    def virtual(self, header: _Line, body: list[_Line]) -> None:
        service = _target(self, header)
        if service is None:
            return
        section = _Virtual(header, service, dict(self.defaults))
        for line in body:
            SECTION.read(self, line, section)
        SETTINGS.apply(self, dict(section.options), service)
        shared = _shared_request(section.reals)
        if shared is not None:  # every real= line asks the same: the virtual's own request/receive
            for keyword, value in zip(("request", "receive"), shared, strict=False):
                line = section.reals[0]
                section.options[keyword] = _Line(line.file, line.line, keyword, f'"{value}"', True)
        service.real_server = _once(self, [(line, rs) for line in section.reals
                                           for rs in _real(self, line, service, shared is None)])
        if service.fwmark and any(":" in rs["address"] for rs in service.real_server):
            service.family = "ipv6"
        if "fallback" in section.options:
            _fallback(self, section.options["fallback"], service)
        if "fallbackcommand" in section.options:
            _fallback_command(self, section.options["fallbackcommand"], service)
        service.check = _check(self, service, section.options)
        if _APPENDS_TARGET in service.check:
            _command_per_real_server(self, service)
        if service.check and _COMBINED in service.check:
            _combined_per_real_server(service)
        if service.check and _NEVER_UP in service.check:
            _never_activated(self, service)
        _own_requests(self, service)
        key = (service.protocol, service.address, service.port, service.fwmark)
        if key in self.services:
            _merge(self, header, self.services[key], service.output())
            return
        service.take_name(self.names)
        self.services[key] = service.output()
        self.conv.config.setdefault("virtual_server", []).append(self.services[key])


def _once(reader: _Ldirectord, reals: list[tuple[_Line, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each real server once: a second listing only repeats an add the kernel refuses."""
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    for line, rs in reals:
        first = kept.setdefault((rs["address"], rs["port"]), rs)
        if first is rs:
            continue
        where = endpoint(rs["address"], rs["port"])
        if first == rs:
            reader.remark(line, f"{where} is listed twice: kept once, as the kernel holds a real server once")
        else:
            reader.skip(line, f"{where} is listed twice with other settings: the first is kept, as ldirectord's "
                              "second add fails")
    return list(kept.values())


def _merge(reader: _Ldirectord, header: _Line, first: dict[str, Any], second: dict[str, Any]) -> None:
    """A virtual= listed again: its real servers join the first's (the kernel holds one service)."""
    have = {(rs["address"], rs["port"]) for rs in first.get("real_server", [])}
    added = [rs for rs in second.get("real_server", []) if (rs["address"], rs["port"]) not in have]
    first.setdefault("real_server", []).extend(added)
    differ = sorted(key for key in set(first) | set(second)
                    if key not in ("name", "real_server") and first.get(key) != second.get(key))
    what = (f"listed twice, which ldirectord refuses: imported by merging, its {len(added)} new real "
            "server(s) join the first's")
    reader.skip(header, f"{what}; its other settings ({', '.join(differ)}) are ignored" if differ else what)


def _target(reader: _Ldirectord, header: _Line) -> Service | None:
    """virtual=ADDRESS:PORT, [IPV6]:PORT or a fwmark number, as a service with ldirectord's defaults."""
    target = _unquote(header.value)
    service = Service(scheduler="wrr", on_failure="quiesce")
    fwmark = to_int(target) if target.isdigit() else None  # None past int()'s 4300 digits, or for "²"
    if fwmark is not None:
        service.fwmark = fwmark
        return service
    parsed = _host_port(target)
    if parsed is None:
        reader.bad(header, f"{target!r} is not ADDRESS:PORT, [IPV6]:PORT or a fwmark number "
                           "(PORT a number or a service name of /etc/services)")
        return None
    service.address, service.port = parsed
    return service


# --- a virtual= section: the keys it takes, then what each setting becomes ----------------------

# --- global options that are not defaults of the virtual= sections ---------------------------

GLOBAL: Table[_Ldirectord, _Line, dict[str, Any]] = Table(
    fallback=lambda reader, line, config: reader.skip(line, "global option not supported by directord"))
SYSLOG_FACILITIES = field_choices(GlobalConfig, "log_facility")


@GLOBAL.on("autoreload")
def _autoreload(reader: _Ldirectord, line: _Line, config: dict[str, Any]) -> None:
    switch = _unquote(line.value).lower()
    if switch not in ("yes", "no"):
        reader.bad(line, f"{line.value!r} is not yes or no")
        return
    config.setdefault("global", {})["auto_reload"] = switch == "yes"
    if switch == "yes":
        reader.remark(line, "auto_reload: directord watches the file with inotify and reloads a second after it "
                            "changes, instead of looking at every checkinterval")


@GLOBAL.on("logfile")
def _logfile(reader: _Ldirectord, line: _Line, config: dict[str, Any]) -> None:
    """logfile="/path" appends to a file, logfile="local0" logs to that syslog facility."""
    value = _unquote(line.value)
    section = config.setdefault("global", {})
    if value.startswith("/"):
        section["log_file"] = value
        reader.remark(line, "the shipped systemd unit lets directord write only under /var/log/directord/: "
                            f"allow {value} with ReadWritePaths= in a drop-in (systemctl edit directord), or move it")
    elif value in SYSLOG_FACILITIES:
        section["log_facility"] = value
    else:
        reader.skip(line, f"{value!r} is neither a file path nor a syslog facility directord knows "
                          f"({', '.join(SYSLOG_FACILITIES)})")


SECTION: Table[_Ldirectord, _Line, _Virtual] = Table()
SETTINGS: Table[_Ldirectord, _Line, Service] = Table()


@SECTION.on("real")
def _real_line(reader: _Ldirectord, line: _Line, section: _Virtual) -> None:
    section.reals.append(line)


@SECTION.on(*SERVICE_ONLY, *SHARED)
def _setting(reader: _Ldirectord, line: _Line, section: _Virtual) -> None:
    section.options[line.keyword] = line


# SETTINGS run in the order written here: netmask needs to know whether persistent was set.


@SETTINGS.on("scheduler")
def _scheduler(reader: _Ldirectord, line: _Line, service: Service) -> None:
    service.scheduler = line.value


@SETTINGS.on("protocol")
def _protocol(reader: _Ldirectord, line: _Line, service: Service) -> None:
    protocol = line.value.lower()
    if protocol == "fwm":
        if not service.fwmark:
            reader.bad(line, "fwm needs virtual= set to a fwmark number")
    elif protocol in ("tcp", "udp", "sctp"):
        service.protocol = protocol
    else:
        reader.bad(line, f"{protocol!r} is not tcp, udp, sctp or fwm")


@SETTINGS.on("persistent")
def _persistent(reader: _Ldirectord, line: _Line, service: Service) -> None:
    value = to_int(line.value)
    if value is None:
        reader.bad(line, "must be a number of seconds")
    else:
        service.persistence_timeout = seconds(value)


@SETTINGS.on("netmask")
def _netmask(reader: _Ldirectord, line: _Line, service: Service) -> None:
    prefix = mask_to_prefix(line.value)
    if prefix is None:
        reader.bad(line, "is not a netmask")
    elif service.persistence_timeout is not None:
        service.persistence_netmask = prefix
    else:
        reader.remark(line, "not imported: without persistent it has no effect, in ldirectord either")


@SETTINGS.on("quiescent")
def _quiescent(reader: _Ldirectord, line: _Line, service: Service) -> None:
    service.on_failure = "remove" if line.value.lower() == "no" else "quiesce"


def _fallback_command(reader: _Ldirectord, line: _Line, service: Service) -> None:
    """fallbackcommand runs with "start" when every real server is down and "stop" when the
    first is back: directord's quorum hooks, at the default quorum of 1."""
    try:
        argv = shlex.split(_unquote(line.value))
    except ValueError as exc:
        reader.bad(line, f"cannot split the command: {exc}")
        return
    if not argv:
        reader.bad(line, "needs a command")
        return
    service.quorum_down, service.quorum_up = [*argv, "start"], [*argv, "stop"]


def _fallback(reader: _Ldirectord, line: _Line, service: Service) -> None:
    """fallback=ADDRESS[:PORT] [gate|masq|ipip]: the sorry server."""
    parts = line.value.split()
    parsed = _host_port(parts[0]) if parts else None
    if parsed is None and parts and canonical_ip(parts[0]):
        parsed = (canonical_ip(parts[0]), service.port or 0)
    if parsed is None:
        reader.bad(line, f"{line.value!r} is not ADDRESS[:PORT] [gate|masq|ipip]")
        return
    ipv6 = ":" in (service.address or "") or service.family == "ipv6"
    if (":" in parsed[0]) != ipv6:
        reader.skip(line, f"fallback {parsed[0]} is not the address family of {service.address or 'the service'}")
        return
    service.sorry_server = endpoint(*parsed) if parsed[1] else parsed[0]
    if len(parts) > 1 and METHODS.get(parts[1]) != (service.method or "nat"):
        reader.skip(line, f"forwarding method {parts[1]} ignored: the sorry server uses the service's method")


def _real_words(line: _Line) -> list[str] | None:
    try:
        return shlex.split(line.value.replace(",", " "))
    except ValueError:
        return None


def _shared_request(reals: list[_Line]) -> tuple[str, ...] | None:
    """The request (and receive) every real= line names alike, when they all name one."""
    extras = {tuple(w for w in words[2:] if to_int(w) is None) if words is not None else None
              for words in map(_real_words, reals)}
    if len(extras) != 1:
        return None
    [extra] = extras
    return extra if extra and len(extra) <= 2 else None


def _real(reader: _Ldirectord, line: _Line, service: Service, own_request: bool = True) -> list[dict[str, Any]]:
    """One real= line: ADDRESS[->LAST]:PORT METHOD [WEIGHT] ["request", "receive"].

    The first real server's method becomes the service's; others that differ keep their own."""
    try:
        words = shlex.split(line.value.replace(",", " "))
    except ValueError as exc:
        reader.bad(line, f"cannot split: {exc}")
        return []
    try:
        addresses = _address_range(words[0], reader.range_room) if words else None
    except _TooManyAddresses as exc:
        reader.bad(line, str(exc))
        return []
    if not addresses:
        reader.bad(line, f"{line.value!r} does not start with ADDRESS:PORT")
        return []
    method = METHODS.get(words[1]) if len(words) > 1 else "dr"
    if method is None:
        reader.bad(line, f"{words[1]!r} is not gate, masq or ipip")
        return []
    service.method = service.method or method
    extra = [w for w in words[2:] if to_int(w) is None]
    hosts, port = addresses
    if "->" in words[0]:
        reader.range_room -= len(hosts)
    weight = to_int(words[2]) if len(words) > 2 else None
    entries = [_real_server(host, port if port is not None else service.port or 0, method, weight, service)
               for host in hosts]
    if extra and own_request:
        for entry in entries:
            entry[_OWN_REQUEST] = (extra, line)
    return entries


_OWN_REQUEST = "(request, receive)"  # a real= line's own request and receive, until its check is made


def _own_requests(reader: _Ldirectord, service: Service) -> None:
    """A real server with its own "request", "receive" gets the service's http check with them."""
    check = service.check or {}
    for rs in service.real_server:
        if _OWN_REQUEST not in rs:
            continue
        extra, line = rs.pop(_OWN_REQUEST)
        if check.get("type") not in ("http", "https") or len(extra) > 2 or "checks" in rs:
            reader.skip(line, f"per-real-server request/receive {extra!r} ignored: they apply to http and https "
                        "negotiate checks")
            continue
        own = check | {"path": "/" + extra[0].lstrip("/")}
        if len(extra) > 1:
            own["expect_body"] = extra[1]
        rs["checks"] = [own]


def _real_server(address: str, port: int, method: str, weight: int | None, service: Service) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": address, "port": port}
    if method != service.method:
        entry["method"] = method
    if weight is not None:
        entry["weight"] = weight
    return entry


# --- the check: a handler per checktype ----------------------------------------------------------


def _check(reader: _Ldirectord, service: Service, options: dict[str, _Line]) -> dict[str, Any]:
    kind_line, service_line = options.get("checktype"), options.get("service")
    kind = kind_line.value.lower() if kind_line else "negotiate"
    connects = int(kind) if kind.isdigit() and kind_line is not None else None
    kind = "negotiate" if connects is not None else kind
    probe = service_line.value.lower() if service_line else SERVICE_PORTS.get(service.port or 0, "none")
    source = _CheckSource(kind, kind_line, probe, service_line, options)
    check = CHECKS.get(kind, _unknown_check)(reader, source)
    if check["type"] != "none":
        _timing(reader, check, options, service)
    _well_known_port(reader, service, check, kind_line or service_line)
    check = {k: v for k, v in check.items() if v is not None}
    if connects is not None and kind_line is not None:
        return _combined(reader, kind_line, connects, check, options, service)
    return check


# the port a check of each type talks to when a fwmark service's real servers have none
WELL_KNOWN_PORTS = {"http": 80, "https": 443, "smtp": 25, "dns": 53, "ftp": 21, "imap": 143, "imaps": 993,
                    "pop": 110, "pops": 995, "ldap": 389, "mysql": 3306, "pgsql": 5432, "radius": 1812,
                    "sip": 5060}


def _well_known_port(reader: _Ldirectord, service: Service, check: dict[str, Any], line: _Line | None) -> None:
    """A fwmark service's real servers keep the client's port (0): its check talks to the
    service type's own port, unless checkport says another."""
    if not service.fwmark or check.get("port") is not None or check["type"] not in WELL_KNOWN_PORTS:
        return
    if any(rs.get("port", 0) == 0 for rs in service.real_server):
        check["port"] = WELL_KNOWN_PORTS[check["type"]]
        if line is not None:
            reader.remark(line, f"a fwmark service's real servers have no port: the {check['type']} check "
                                f"talks to port {check['port']}")


_COMBINED = "(combined)"  # checktype=N: the connect check and the negotiate check, until the real servers get them


def _combined(reader: _Ldirectord, line: _Line, connects: int, negotiate: dict[str, Any],
              options: dict[str, _Line], service: Service) -> dict[str, Any]:
    """checktype=N: N connect checks, then one negotiate check. directord runs both on each
    real server, the negotiate one N+1 times less often; a real server is up while both pass."""
    if negotiate["type"] in ("none", "tcp") or connects == 0:
        if connects:
            reader.remark(line, f"checktype={connects}: the negotiate check is a connect check here, run every time")
        return negotiate
    connect = {"type": "tcp", "timeout": _timeout(options, "connecttimeout")}
    _timing(reader, connect, options, service)
    if "port" in negotiate:
        connect["port"] = negotiate["port"]
    interval = parse_duration(negotiate["interval"]) * (connects + 1)
    reader.remark(line, f"checktype={connects}: a connect check every {negotiate['interval']} and the "
                        f"{negotiate['type']} check every {seconds(interval)}, both on each real server")
    return {_COMBINED: [connect, negotiate | {"interval": seconds(interval)}]}


def _combined_per_real_server(service: Service) -> None:
    assert service.check is not None
    checks = service.check.pop(_COMBINED)
    service.check = None
    for rs in service.real_server:
        rs["checks"] = [dict(check) for check in checks]


def _negotiate(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    negotiator = NEGOTIATORS.get(source.service)
    if negotiator is not None:
        return negotiator(reader, source)
    if source.service == "https":  # ldirectord does not verify the certificate
        return _http_check(source.service, source.options) | {"tls_verify": False}
    if source.service == "http":
        return _http_check(source.service, source.options)
    if source.service in LOGIN_SERVICES:
        return _login_check(reader, source)
    where = source.service_line or source.kind_line
    if source.service != "none" and where is not None:
        reader.skip(where, f"negotiate checks for {source.service} are not supported: a TCP connect check is used")
    return _connect(reader, source)


def _connect(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    return {"type": "tcp", "timeout": _timeout(source.options, "connecttimeout")}


def _external(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    line = source.options.get("checkcommand")
    if line is None:
        reader.bad(source.options["checktype"], "external checks need checkcommand=")
        return {"type": "none"}
    try:
        argv = shlex.split(_unquote(line.value))
    except ValueError as exc:
        reader.bad(line, f"cannot split the command: {exc}")
        return {"type": "none"}
    return {"type": "exec", "command": argv, "timeout": _timeout(source.options, "checktimeout"),
            _APPENDS_TARGET: line}


_APPENDS_TARGET = "(checkcommand)"  # marks an external check until its real servers get their own


def _command_per_real_server(reader: _Ldirectord, service: Service) -> None:
    """ldirectord runs checkcommand with the virtual address and port and the real server's
    appended: each real server gets its own exec check with its own arguments."""
    assert service.check is not None
    line = service.check.pop(_APPENDS_TARGET)
    if service.fwmark:
        reader.skip(line, "ldirectord appends (virtual, port, real, port) to the command; a fwmark service "
                    "has no virtual address: directord passes the target in DIRECTORD_ADDRESS / DIRECTORD_PORT")
        return
    check, service.check = service.check, None
    for rs in service.real_server:
        target = [service.address or "", str(service.port), rs["address"], str(rs["port"])]
        rs["checks"] = [check | {"command": [*check["command"], *target]}]


def _always_up(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    return {"type": "none"}


_NEVER_UP = "(checktype=off)"  # marks a service whose real servers are never activated


def _never_up(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    return {"type": "none", _NEVER_UP: source.kind_line}


def _never_activated(reader: _Ldirectord, service: Service) -> None:
    """checktype=off: no real or fallback server ever takes a connection. They are imported with
    weight 0, so the service and its servers are in the table and take none, as with ldirectord."""
    assert service.check is not None
    line = service.check.pop(_NEVER_UP)
    for rs in service.real_server:
        rs["weight"] = 0
    service.sorry_server = None
    reader.remark(line, "checktype=off: every real server is imported with weight 0 and the fallback is left "
                        "out, so none takes a connection, as ldirectord never activates them")


def _unknown_check(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    if source.kind_line is not None:
        reader.skip(source.kind_line, f"checktype={source.kind} is not supported: a TCP connect check is used")
    return _connect(reader, source)


CHECKS: dict[str, Callable[[_Ldirectord, _CheckSource], dict[str, Any]]] = {
    "negotiate": _negotiate, "connect": _connect, "external": _external, "external-perl": _external,
    "on": _always_up, "off": _never_up}


# --- checktype=ping, service=dns and service=smtp (issue 19) -----------------------------------


def _ping(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    return {"type": "ping", "timeout": _timeout(source.options, "checktimeout")}


def _dns(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    """ldirectord looks up `request` and wants `receive` among the addresses of its answer."""
    check: dict[str, Any] = {"type": "dns", "timeout": _timeout(source.options, "negotiatetimeout")}
    request, receive = source.options.get("request"), source.options.get("receive")
    if request is None:
        where = source.service_line or source.kind_line
        if where is not None:
            reader.skip(where, "a dns check without request= (the name to look up): the default query, "
                        "the SOA of the root, is asked")
        return check
    check |= {"query_name": _unquote(request.value), "query_type": "A"}
    if receive is not None:
        check["expect"] = rf"(?m)\sIN A {re.escape(_unquote(receive.value))}$"
    return check


def _smtp(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    return {"type": "smtp", "timeout": _timeout(source.options, "negotiatetimeout")}


CHECKS |= {"ping": _ping}
NEGOTIATORS: dict[str, Callable[[_Ldirectord, _CheckSource], dict[str, Any]]] = {"dns": _dns, "smtp": _smtp}


def _timeout(options: dict[str, _Line], specific: str) -> str:
    for key in (specific, "checktimeout"):
        value = to_float(options[key].value) if key in options else None
        if value is not None:
            return seconds(value)
    default = DEFAULT_NEGOTIATE_TIMEOUT if specific == "negotiatetimeout" else DEFAULT_CHECK_TIMEOUT
    return seconds(default)


def _http_check(kind: str, options: dict[str, _Line]) -> dict[str, Any]:
    check: dict[str, Any] = {"type": kind}
    if "request" in options:
        check["path"] = "/" + _unquote(options["request"].value).lstrip("/")
    if "receive" in options:
        check["expect_body"] = _unquote(options["receive"].value)
    if "httpmethod" in options:
        check["method"] = options["httpmethod"].value.upper()
    if "virtualhost" in options:
        check["host"] = _unquote(options["virtualhost"].value)
    check["timeout"] = _timeout(options, "negotiatetimeout")
    return check


# ldirectord service= -> directord check type, and which of request= / receive= it reads: the SQL
# checks run `request` and pass on a row (receive unused), ldap reads the entry `request` names
# and ftp fetches the file it names, both matching `receive`; the others log in only.
LOGIN_SERVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mysql": ("mysql", ("request",)), "pgsql": ("pgsql", ("request",)), "ldap": ("ldap", ("request", "receive")),
    "ftp": ("ftp", ("request", "receive")), "imap": ("imap", ()), "imaps": ("imaps", ()), "pop": ("pop", ()),
    "pops": ("pops", ()), "radius": ("radius", ())}


def _login_check(reader: _Ldirectord, source: _CheckSource) -> dict[str, Any]:
    """service=mysql|pgsql|ldap|imap|imaps|pop|pops|ftp|radius with login=, passwd=, database=, secret=."""
    kind, reads = LOGIN_SERVICES[source.service]
    options = source.options
    check: dict[str, Any] = {"type": kind}
    for key in ("login", "passwd", "secret", *reads):
        if key in options:
            check[key] = _unquote(options[key].value)
    if "database" in options and kind in ("mysql", "pgsql"):
        check["database"] = _unquote(options["database"].value)
    if "login" not in check and kind in ("mysql", "pgsql", "ftp"):
        for key in ("request", "receive"):
            if key in check and options[key].indented:
                reader.skip(options[key], f"{key}= without login= is not carried over: the check is the greeting")
            check.pop(key, None)
    where = source.service_line or source.kind_line
    if kind == "radius" and not ("login" in check and "secret" in check) and where is not None:
        reader.skip(where, "service=radius needs login= and secret=: every check fails without them")
    for key in ("login", "passwd", "secret", "database", "request"):
        value = check.get(key)
        if isinstance(value, str) and re.search(r"[\x00-\x1f\x7f]", value):
            reader.bad(options[key], "must not contain control characters")
            del check[key]
    check["timeout"] = _timeout(options, "negotiatetimeout")
    return check


def _timing(reader: _Ldirectord, check: dict[str, Any], options: dict[str, _Line], service: Service) -> None:
    check["interval"] = seconds(DEFAULT_CHECK_INTERVAL)
    if "checkinterval" in options:
        value = to_float(options["checkinterval"].value)
        if value is None:
            reader.bad(options["checkinterval"], "must be a number of seconds")
        else:
            check["interval"] = seconds(value)
    portless = check["type"] in ("exec", "ping")
    if "checkport" in options and not portless:
        check["port"] = to_int(options["checkport"].value)
    elif not portless and any(rs["port"] == 0 for rs in service.real_server):
        check["port"] = service.port or None
    count = options.get("failurecount")
    check["fall"] = to_int(count.value) if count and to_int(count.value) else 1
    check["rise"] = 1


_PORT = r"(\d+|[A-Za-z][\w.+-]*)"  # a number or a service name, as ldirectord's getservbyname reads it


def _host_port(text: str) -> tuple[str, int] | None:
    """ADDRESS:PORT or [IPV6]:PORT, PORT a number or a service name of /etc/services."""
    match = re.fullmatch(rf"\[([0-9A-Fa-f:.]+)\]:{_PORT}|([0-9.]+):{_PORT}", text)
    if not match:
        return None
    address, port = canonical_ip(match.group(1) or match.group(3)), _port(match.group(2) or match.group(4))
    return (address, port) if address and port is not None else None


def _port(text: str) -> int | None:
    return to_int(text) if text.isdigit() else service_port(text)


class _TooManyAddresses(ValueError):
    """A FIRST->LAST range larger than what is left of MAX_RANGE_ADDRESSES."""


def _address_range(text: str, most: int) -> tuple[list[str], int | None] | None:
    """ADDRESS[:PORT], [V6][:PORT] or FIRST->LAST[:PORT] (an IPv4 range of at most MOST
    addresses) -> (addresses, port)."""
    digits: str | None = None
    match = re.fullmatch(rf"(.+?)(?::{_PORT})?", text)
    host = text
    if text.startswith("["):
        inner = re.fullmatch(rf"\[([^\]]+)\](?::{_PORT})?", text)
        if not inner:
            return None
        host, digits = inner.group(1), inner.group(2)
    elif match and text.count(":") <= 1:
        host, digits = match.group(1), match.group(2)
    port = _port(digits) if digits else None
    if digits and port is None:  # more digits than int() reads
        return None
    if "->" in host:
        first, _, last = host.partition("->")
        try:
            low, high = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
        except ValueError:
            return None
        if int(high) - int(low) + 1 > most:
            raise _TooManyAddresses(f"{first}->{last} is {int(high) - int(low) + 1} addresses; the ranges of a file "
                                    f"make at most {MAX_RANGE_ADDRESSES} real servers in all")
        return [str(ipaddress.IPv4Address(n)) for n in range(int(low), int(high) + 1)], port
    address = canonical_ip(host) or (host if is_host_name(host) else None)  # directord resolves names at load
    return ([address], port) if address else None


def convert(path: str) -> Conversion:
    """Read ldirectord.cf at PATH into a directord config."""
    errors: list[str] = []
    lines = _lines(path, errors)
    conv = Conversion(sources=[path])
    converter = _Ldirectord(conv)
    converter.run(lines)
    errors.extend(converter.errors)
    if errors:
        raise SourceError(errors)
    return conv
