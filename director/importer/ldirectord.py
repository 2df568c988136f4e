"""ldirectord.cf -> directord config.

ldirectord's file is `key=value` lines: global ones first, then `virtual=`
lines each followed by an indented block of service options and `real=` lines.
Global check options are defaults that a virtual block may override.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from director.importer import Conversion, SourceError, seconds
from director.importer.common import canonical_ip, endpoint, mask_to_prefix, to_float, to_int, vs_name

METHODS = {"gate": "dr", "masq": "nat", "ipip": "tun"}
# Options valid globally and per virtual service.
SHARED = ("checktimeout", "negotiatetimeout", "connecttimeout", "checkinterval", "failurecount",
          "quiescent", "fallback", "checktype", "service", "request", "receive", "httpmethod", "virtualhost",
          "checkport", "checkcommand")
SERVICE_PORTS = {80: "http", 443: "https"}
DEFAULT_NEGOTIATE_TIMEOUT = 30.0
DEFAULT_CHECK_TIMEOUT = 5.0
DEFAULT_CHECK_INTERVAL = 10.0
_VALUE = re.compile(r'\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$')


class _Line:
    def __init__(self, file: str, number: int, key: str, value: str, indented: bool) -> None:
        self.file, self.number, self.key, self.value, self.indented = file, number, key, value, indented


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
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
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


class _Ldirectord:
    def __init__(self, conv: Conversion) -> None:
        self.conv = conv
        self.errors: list[str] = []
        self.names: set[str] = set()
        self.defaults: dict[str, _Line] = {}

    def skip(self, line: _Line, reason: str = "no directord equivalent") -> None:
        self.conv.note(line.file, line.number, line.key, reason)

    def bad(self, line: _Line, reason: str) -> None:
        self.errors.append(f"{line.file}:{line.number}: {line.key}: {reason}")

    def run(self, lines: list[_Line]) -> None:
        blocks: list[tuple[_Line, list[_Line]]] = []
        for line in lines:
            if line.key == "virtual":
                blocks.append((line, []))
            elif line.indented and blocks:
                blocks[-1][1].append(line)
            elif line.key == "real":
                self.bad(line, "real= must be indented under a virtual= line")
            elif line.key in SHARED:
                self.defaults[line.key] = line
            else:
                self.skip(line, "global option not supported by directord")
        for header, body in blocks:
            self.virtual(header, body)

    # --- one virtual service ---------------------------------------------------------------

    def virtual(self, header: _Line, body: list[_Line]) -> None:
        vs: dict[str, Any] = {}
        target = _unquote(header.value)
        if target.isdigit():
            vs["fwmark"] = int(target)
        else:
            parsed = _host_port(target)
            if parsed is None:
                self.bad(header, f"{target!r} is not ADDRESS:PORT, [IPV6]:PORT or a fwmark number")
                return
            vs["address"], vs["port"] = parsed
        options = dict(self.defaults)
        reals: list[_Line] = []
        for line in body:
            if line.key == "real":
                reals.append(line)
            elif line.key in ("scheduler", "persistent", "netmask", "protocol") or line.key in SHARED:
                options[line.key] = line
            else:
                self.skip(line)
        self.service_options(vs, options)
        vs["real_server"] = [rs for line in reals for rs in self.real(line, vs, options)]
        if vs.get("fwmark") and any(":" in rs["address"] for rs in vs["real_server"]):
            vs["family"] = "ipv6"
        if "fallback" in options:
            self.fallback(options["fallback"], vs)
        vs["check"] = self.check(vs, options)
        vs["name"] = vs_name(vs.get("address"), vs.get("port"), vs.get("fwmark"), vs.get("protocol", "tcp"),
                             self.names)
        order = ["name", "address", "port", "fwmark", "family", "protocol", "scheduler", "method",
                 "persistence_timeout", "persistence_netmask", "sorry_server", "on_failure", "check", "real_server"]
        self.conv.config.setdefault("virtual_server", []).append(
            {k: vs[k] for k in order if vs.get(k) is not None})

    def service_options(self, vs: dict[str, Any], options: dict[str, _Line]) -> None:
        if "scheduler" in options:
            vs["scheduler"] = options["scheduler"].value
        else:
            vs["scheduler"] = "wrr"  # ldirectord's default
        if "protocol" in options:
            protocol = options["protocol"].value.lower()
            if protocol == "fwm":
                if not vs.get("fwmark"):
                    self.bad(options["protocol"], "fwm needs virtual= set to a fwmark number")
            elif protocol in ("tcp", "udp", "sctp"):
                vs["protocol"] = protocol
            else:
                self.bad(options["protocol"], f"{protocol!r} is not tcp, udp, sctp or fwm")
        if "persistent" in options:
            value = to_int(options["persistent"].value)
            if value is None:
                self.bad(options["persistent"], "must be a number of seconds")
            else:
                vs["persistence_timeout"] = seconds(value)
        if "netmask" in options:
            prefix = mask_to_prefix(options["netmask"].value)
            if prefix is None:
                self.bad(options["netmask"], "is not a netmask")
            elif "persistence_timeout" in vs:
                vs["persistence_netmask"] = prefix
            else:
                self.skip(options["netmask"], "has no effect without persistent")
        quiescent = options.get("quiescent")
        vs["on_failure"] = "remove" if quiescent and quiescent.value.lower() == "no" else "quiesce"

    def fallback(self, line: _Line, vs: dict[str, Any]) -> None:
        parts = line.value.split()
        parsed = _host_port(parts[0]) if parts else None
        if parsed is None and parts and canonical_ip(parts[0]):
            parsed = (canonical_ip(parts[0]), vs.get("port") or 0)
        if parsed is None:
            self.bad(line, f"{line.value!r} is not ADDRESS[:PORT] [gate|masq|ipip]")
            return
        ipv6 = ":" in (vs.get("address") or "") or vs.get("family") == "ipv6"
        if (":" in parsed[0]) != ipv6:
            self.skip(line, f"fallback {parsed[0]} is not the address family of {vs.get('address') or 'the service'}")
            return
        vs["sorry_server"] = endpoint(*parsed) if parsed[1] else parsed[0]
        if len(parts) > 1 and METHODS.get(parts[1]) != vs.get("method", "nat"):
            self.skip(line, f"forwarding method {parts[1]} ignored: the sorry server uses the service's method")

    def real(self, line: _Line, vs: dict[str, Any], options: dict[str, _Line]) -> list[dict[str, Any]]:
        """One real= line: ADDRESS[->LAST]:PORT METHOD [WEIGHT] ["request", "receive"]."""
        try:
            words = shlex.split(line.value.replace(",", " "))
        except ValueError as exc:
            self.bad(line, f"cannot split: {exc}")
            return []
        addresses = _address_range(words[0]) if words else None
        if not addresses:
            self.bad(line, f"{line.value!r} does not start with ADDRESS:PORT")
            return []
        hosts, port = addresses
        method = METHODS.get(words[1]) if len(words) > 1 else "dr"
        if method is None:
            self.bad(line, f"{words[1]!r} is not gate, masq or ipip")
            return []
        vs.setdefault("method", method)
        servers = []
        for host in hosts:
            rs: dict[str, Any] = {"address": host, "port": port if port is not None else vs.get("port", 0)}
            if method != vs["method"]:
                rs["method"] = method
            if len(words) > 2 and to_int(words[2]) is not None:
                rs["weight"] = to_int(words[2])
            servers.append(rs)
        extra = [w for w in words[2:] if to_int(w) is None]
        if extra:
            self.skip(line, f"per-real-server request/receive {extra!r} ignored: directord checks every "
                      "real server of a service the same way")
        return servers

    # --- the check ------------------------------------------------------------------------------

    def check(self, vs: dict[str, Any], options: dict[str, _Line]) -> dict[str, Any]:
        kind_line = options.get("checktype")
        kind = kind_line.value.lower() if kind_line else "negotiate"
        service_line = options.get("service")
        service = service_line.value.lower() if service_line else SERVICE_PORTS.get(vs.get("port") or 0, "none")
        check: dict[str, Any] = {}
        if kind.isdigit():
            self.skip(kind_line, "checktype=N (negotiate every Nth check) is not supported: every check negotiates")
            kind = "negotiate"
        if kind == "negotiate" and service in ("http", "https"):
            check = self.http_check(service, options)
        elif kind in ("connect", "negotiate"):
            if kind == "negotiate" and service != "none":
                self.skip(service_line or kind_line,
                          f"negotiate checks for {service} are not supported: a TCP connect check is used")
            check = {"type": "tcp", "timeout": self.timeout(options, "connecttimeout")}
        elif kind in ("external", "external-perl"):
            check = self.exec_check(options)
        elif kind in ("on", "off"):
            check = {"type": "none"}
            if kind == "off":
                self.skip(kind_line, "checktype=off (servers never in service) is not supported: they are "
                          "imported without a check")
        else:
            self.skip(kind_line, f"checktype={kind} is not supported: a TCP connect check is used")
            check = {"type": "tcp", "timeout": self.timeout(options, "connecttimeout")}
        if check["type"] != "none":
            self.timing(check, options, vs)
        return {k: v for k, v in check.items() if v is not None}

    def timeout(self, options: dict[str, _Line], specific: str) -> str:
        for key in (specific, "checktimeout"):
            if key in options and to_float(options[key].value) is not None:
                return seconds(to_float(options[key].value))
        default = DEFAULT_NEGOTIATE_TIMEOUT if specific == "negotiatetimeout" else DEFAULT_CHECK_TIMEOUT
        return seconds(default)

    def http_check(self, service: str, options: dict[str, _Line]) -> dict[str, Any]:
        check: dict[str, Any] = {"type": service}
        if "request" in options:
            check["path"] = "/" + _unquote(options["request"].value).lstrip("/")
        if "receive" in options:
            check["expect_body"] = _unquote(options["receive"].value)
        if "httpmethod" in options:
            check["method"] = options["httpmethod"].value.upper()
        if "virtualhost" in options:
            check["host"] = _unquote(options["virtualhost"].value)
        check["timeout"] = self.timeout(options, "negotiatetimeout")
        return check

    def exec_check(self, options: dict[str, _Line]) -> dict[str, Any]:
        line = options.get("checkcommand")
        if line is None:
            self.bad(options["checktype"], "external checks need checkcommand=")
            return {"type": "none"}
        argv = shlex.split(_unquote(line.value))
        self.skip(line, "ldirectord appends (virtual, port, real, port) to the command; directord passes the "
                  "target in DIRECTORD_ADDRESS / DIRECTORD_PORT instead: adapt the script")
        return {"type": "exec", "command": argv, "timeout": self.timeout(options, "checktimeout")}

    def timing(self, check: dict[str, Any], options: dict[str, _Line], vs: dict[str, Any]) -> None:
        check["interval"] = seconds(DEFAULT_CHECK_INTERVAL)
        if "checkinterval" in options:
            value = to_float(options["checkinterval"].value)
            if value is None:
                self.bad(options["checkinterval"], "must be a number of seconds")
            else:
                check["interval"] = seconds(value)
        if "checkport" in options and check["type"] != "exec":
            check["port"] = to_int(options["checkport"].value)
        elif check["type"] != "exec" and any(rs["port"] == 0 for rs in vs["real_server"]):
            check["port"] = vs.get("port") or None
        count = options.get("failurecount")
        check["fall"] = to_int(count.value) if count and to_int(count.value) else 1
        check["rise"] = 1


def _host_port(text: str) -> tuple[str, int] | None:
    """ADDRESS:PORT or [IPV6]:PORT (service names are not resolved)."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([0-9.]+):(\d+)", text)
    if not match:
        return None
    host = match.group(1) or match.group(3)
    address = canonical_ip(host)
    return (address, int(match.group(2) or match.group(4))) if address else None


def _address_range(text: str) -> tuple[list[str], int | None] | None:
    """ADDRESS[:PORT], [V6][:PORT] or FIRST->LAST[:PORT] (an IPv4 range) -> (addresses, port)."""
    port: int | None = None
    match = re.fullmatch(r"(.+?)(?::(\d+))?", text)
    host = text
    if text.startswith("["):
        inner = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", text)
        if not inner:
            return None
        host, port = inner.group(1), int(inner.group(2)) if inner.group(2) else None
    elif match and text.count(":") <= 1:
        host, port = match.group(1), int(match.group(2)) if match.group(2) else None
    if "->" in host:
        first, _, last = host.partition("->")
        try:
            low, high = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
        except ValueError:
            return None
        return [str(ipaddress.IPv4Address(n)) for n in range(int(low), int(high) + 1)], port
    address = canonical_ip(host)
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
