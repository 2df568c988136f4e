"""keepalived.conf -> directord config.

Walks the statement tree from `lexer` and maps what has a directord equivalent;
everything else becomes an `Unmapped` entry with file:line and a reason.
keepalived's health checks sit on each real server while directord's sit on the
virtual server: the first real server's check is used and any real server whose
check differs is listed.
"""

from __future__ import annotations

import shlex
from typing import Any

from director.importer import Conversion, seconds
from director.importer.common import (
    canonical_ip,
    endpoint,
    mask_to_prefix,
    to_float,
    to_int,
    vs_name,
    with_prefix,
)
from director.importer.lexer import Node, convert_braced

METHODS = {"NAT": "nat", "DR": "dr", "TUN": "tun"}
CHECKERS = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK")
OTHER_CHECKERS = ("SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "BFD_CHECK", "FILE_CHECK", "PING_CHECK")
# keepalived's defaults where they differ from directord's.
DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = 1
NO_EQUIVALENT = "no directord equivalent"
VS_DEFAULTS = ("delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry", "inhibit_on_failure",
               "alpha", "virtualhost")


class _Keepalived:
    def __init__(self, conv: Conversion) -> None:
        self.conv = conv
        self.errors: list[str] = []
        self.names: set[str] = set()
        self.global_version: int | None = None
        self.garp_defaults: dict[str, Any] = {}

    # --- small helpers ------------------------------------------------------------

    def skip(self, node: Node, reason: str = NO_EQUIVALENT) -> None:
        self.conv.note(node.file, node.line, node.keyword, reason)

    def bad(self, node: Node, reason: str) -> None:
        self.errors.append(f"{node.file}:{node.line}: {node.keyword}: {reason}")

    def arg(self, node: Node, count: int = 1) -> list[str] | None:
        if len(node.args) < count:
            self.bad(node, f"needs {count} argument{'s' if count > 1 else ''}")
            return None
        if len(node.args) > count:
            self.skip(node, f"extra arguments {' '.join(node.args[count:])!r} ignored")
        return node.args[:count]

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

    # --- top level -----------------------------------------------------------------

    def run(self, nodes: list[Node]) -> None:
        config = self.conv.config
        handlers = {"global_defs": self.global_defs, "vrrp_instance": self.vrrp_instance,
                    "virtual_server": self.virtual_server}
        groups = []
        for node in nodes:
            if node.keyword in handlers:
                handlers[node.keyword](node)
            elif node.keyword == "vrrp_sync_group":
                groups.append(node)
            else:
                self.skip(node, "not supported by directord")
        for node in groups:
            self.sync_group(node)
        for instance in config.get("vrrp_instance", []):
            self.finish_instance(instance)

    def global_defs(self, node: Node) -> None:
        garp_keys = {"vrrp_garp_master_repeat": "repeat", "vrrp_garp_interval": "interval",
                     "vrrp_garp_master_refresh": "refresh"}
        for child in self.block(node):
            key = child.keyword
            if key in ("router_id", "lvs_id"):
                args = self.arg(child)
                if args:
                    self.conv.config.setdefault("global", {})["router_id"] = args[0]
            elif key == "vrrp_version":
                self.global_version = self.integer(child)
            elif key == "vrrp_rt_priority":
                value = self.integer(child)
                if value is not None:
                    self.conv.config.setdefault("global", {})["vrrp_realtime_priority"] = value
            elif key in garp_keys:
                value = self.integer(child) if key.endswith("repeat") else self.duration(child)
                if value is not None:
                    self.garp_defaults[garp_keys[key]] = value
            elif key == "lvs_sync_daemon":
                self.lvs_sync_daemon(child)
            elif key == "lvs_timeouts":
                self.lvs_timeouts(child)
            else:
                self.skip(child)

    def lvs_sync_daemon(self, node: Node) -> None:
        if not node.args:
            self.bad(node, "needs an interface")
            return
        sync: dict[str, Any] = {"interface": node.args[0]}
        rest = node.args[2:] if len(node.args) > 1 and node.args[1] != "id" else node.args[1:]
        for option, text in zip(rest[::2], rest[1::2], strict=False):
            if option == "id" and to_int(text) is not None:
                sync["syncid"] = to_int(text)
            elif option in ("port", "ttl") and to_int(text) is not None:
                sync[f"mcast_{option}"] = to_int(text)
            elif option == "group":
                sync["mcast_group"] = text
            elif option == "maxlen" and to_int(text) is not None:
                sync["max_packet_size"] = to_int(text)
            else:
                self.skip(node, f"option {option} {text} ignored")
        if len(node.args) > 1 and node.args[1] != "id":
            self.skip(node, f"directord runs the sync daemon on every instance's state, not only {node.args[1]}'s")
        self.conv.config.setdefault("ipvs", {})["sync_daemon"] = sync

    def lvs_timeouts(self, node: Node) -> None:
        timeouts = {}
        for option, text in zip(node.args[::2], node.args[1::2], strict=False):
            if option in ("tcp", "tcpfin", "udp") and to_int(text) is not None:
                timeouts[option] = seconds(to_int(text))
            else:
                self.skip(node, f"option {option} {text} ignored")
        self.conv.config.setdefault("ipvs", {})["timeouts"] = timeouts

    # --- VRRP ------------------------------------------------------------------------

    def vrrp_instance(self, node: Node) -> None:
        name = node.args[0] if node.args else f"VI_{node.line}"
        instance: dict[str, Any] = {"name": name}
        for child in self.block(node):
            self.instance_option(child, instance)
        self.conv.config.setdefault("vrrp_instance", []).append(instance)

    def instance_option(self, child: Node, instance: dict[str, Any]) -> None:
        key = child.keyword
        simple = {"interface": "interface", "unicast_src_ip": "unicast_src"}
        ints = {"virtual_router_id": "vrid", "priority": "priority", "version": "version"}
        if key in simple:
            args = self.arg(child)
            if args:
                instance[simple[key]] = args[0]
        elif key in ints:
            value = self.integer(child)
            if value is not None:
                instance[ints[key]] = value
        elif key == "advert_int":
            instance["_advert"] = self.number(child)
        elif key == "nopreempt":
            instance["preempt"] = False
            instance["_nopreempt"] = child.where
        elif key == "preempt_delay":
            instance["preempt_delay"] = self.duration(child)
            instance["_preempt_delay"] = child
        elif key == "state":
            self.skip(child, "no start state in directord: the priority decides who becomes master")
        elif key == "virtual_ipaddress":
            instance["virtual_ips"] = self.addresses(child, prefix=True)
        elif key == "unicast_peer":
            instance["unicast_peers"] = self.addresses(child, prefix=False)
        elif key == "track_interface":
            instance["track_interfaces"] = self.track_interfaces(child)
        elif key == "notify":
            self.notify(child, instance)
        elif key.startswith("notify_"):
            self.skip(child, "directord runs one notify program with (instance, state, priority): "
                      "call this script from a wrapper set as notify")
        elif key in ("garp_master_repeat", "garp_master_refresh", "garp_interval"):
            garp = instance.setdefault("garp", {})
            if key == "garp_master_repeat":
                garp["repeat"] = self.integer(child)
            else:
                garp["refresh" if key == "garp_master_refresh" else "interval"] = self.duration(child)
        elif key == "garp_master_delay":
            self.skip(child, "directord sends one burst of gratuitous ARPs on becoming master, no delayed second burst")
        elif key == "lvs_sync_daemon_interface":
            args = self.arg(child)
            if args:
                self.conv.config.setdefault("ipvs", {}).setdefault("sync_daemon", {})["interface"] = args[0]
        elif key == "authentication":
            self.skip(child, "VRRP authentication is not supported (RFC 5798 removed it)")
        else:
            self.skip(child)

    def addresses(self, node: Node, prefix: bool) -> list[str]:
        """Entries of a virtual_ipaddress / unicast_peer block, one address a line."""
        result = []
        for child in self.block(node):
            text = with_prefix(child.keyword) if prefix else canonical_ip(child.keyword)
            if text is None:
                self.bad(child, f"{child.keyword!r} is not an address")
                continue
            result.append(text)
            if child.args:
                self.conv.note(child.file, child.line, f"{node.keyword} {child.keyword}",
                               f"options {' '.join(child.args)!r} ignored (directord adds the address "
                               "to the instance's interface)")
        return result

    def track_interfaces(self, node: Node) -> list[dict[str, Any]]:
        tracked = []
        for child in self.block(node):
            entry: dict[str, Any] = {"name": child.keyword}
            if len(child.args) == 2 and child.args[0] == "weight" and to_int(child.args[1]) is not None:
                entry["weight"] = to_int(child.args[1])
            elif child.args:
                self.skip(child, f"options {' '.join(child.args)!r} ignored")
            tracked.append(entry)
        return tracked

    def notify(self, node: Node, instance: dict[str, Any]) -> None:
        try:
            argv = shlex.split(" ".join(node.args))
        except ValueError as exc:
            self.bad(node, f"cannot split the command: {exc}")
            return
        if not argv:
            self.bad(node, "needs a program")
            return
        instance["notify"] = argv
        self.skip(node, "mapped, but directord appends (instance, state, priority) where keepalived "
                  "appends (INSTANCE|GROUP, name, state, priority): check the script's arguments")

    def sync_group(self, node: Node) -> None:
        instances = {vi["name"]: vi for vi in self.conv.config.get("vrrp_instance", [])}
        name = node.args[0] if node.args else f"group_{node.line}"
        for child in self.block(node):
            if child.keyword != "group":
                self.skip(child, "sync group option not supported; directord only changes members' state together")
                continue
            for member in self.block(child):
                for member_name in [member.keyword, *member.args]:
                    if member_name in instances:
                        instances[member_name]["sync_group"] = name
                    else:
                        self.bad(member, f"no vrrp_instance named {member_name!r}")

    def finish_instance(self, instance: dict[str, Any]) -> None:
        """Settle the version, advert interval, garp defaults and preempt_delay of one instance."""
        vips = instance.get("virtual_ips", [])
        if "version" not in instance:
            ipv6 = any(":" in vip for vip in vips)
            instance["version"] = self.global_version or (3 if ipv6 else 2)
        advert = instance.pop("_advert", None)
        if advert is not None:
            instance["advert_interval"] = seconds(advert)
        delay = instance.pop("_preempt_delay", None)
        if delay is not None and instance.pop("_nopreempt", None):
            instance.pop("preempt_delay", None)
            self.skip(delay, "has no effect with nopreempt")
        instance.pop("_nopreempt", None)
        garp = {**self.garp_defaults, **instance.get("garp", {})}
        if garp:
            instance["garp"] = garp
        order = ["name", "interface", "vrid", "priority", "version", "advert_interval", "preempt",
                 "preempt_delay", "virtual_ips", "unicast_src", "unicast_peers", "garp", "track_interfaces",
                 "notify", "sync_group"]
        items = dict(instance)
        instance.clear()
        instance.update({k: items[k] for k in order if k in items and items[k] is not None})

    # --- virtual servers -----------------------------------------------------------------

    def virtual_server(self, node: Node) -> None:
        vs: dict[str, Any] = {}
        if len(node.args) == 2 and node.args[0] == "fwmark":
            vs["fwmark"] = to_int(node.args[1])
            if vs["fwmark"] is None:
                self.bad(node, f"fwmark {node.args[1]!r} is not an integer")
                return
        elif len(node.args) == 2 and node.args[0] == "group":
            self.skip(node, "virtual_server_group is not supported: write one virtual server per address")
            return
        elif len(node.args) in (1, 2) and canonical_ip(node.args[0]):
            vs["address"] = canonical_ip(node.args[0])
            vs["port"] = to_int(node.args[1]) if len(node.args) == 2 else 0
            if vs["port"] is None:
                self.bad(node, f"port {node.args[1]!r} is not an integer")
                return
        else:
            self.bad(node, "needs ADDRESS PORT or fwmark N")
            return
        state = _VsState(vs)
        children = self.block(node)
        # Service-wide check defaults apply to every real server wherever they are written.
        first = [c for c in children if c.keyword in VS_DEFAULTS]
        for child in first + [c for c in children if c.keyword not in VS_DEFAULTS]:
            self.vs_option(child, state)
        self.finish_vs(node, state)
        self.conv.config.setdefault("virtual_server", []).append(vs)

    def vs_option(self, child: Node, state: _VsState) -> None:
        vs, key = state.vs, child.keyword
        if key in ("lb_algo", "lvs_sched"):
            args = self.arg(child)
            if args:
                vs["scheduler"] = args[0]
        elif key in ("lb_kind", "lvs_method"):
            vs["method"] = self.method(child)
        elif key == "protocol":
            args = self.arg(child)
            if args:
                vs["protocol"] = args[0].lower()
        elif key == "persistence_timeout":
            state.persistence = self.duration(child)
        elif key == "persistence_granularity":
            args = self.arg(child)
            prefix = mask_to_prefix(args[0]) if args else None
            if args and prefix is None:
                self.bad(child, f"{args[0]!r} is not a netmask")
            vs["persistence_netmask"] = prefix
        elif key == "quorum":
            vs["quorum"] = self.integer(child)
        elif key == "sorry_server":
            self.sorry_server(child, vs)
        elif key == "real_server":
            self.real_server(child, state)
        elif key == "alpha":
            state.initial = "down"
        elif key == "ops":
            vs["one_packet"] = True
        elif key == "virtualhost":
            args = self.arg(child)
            state.virtualhost = args[0] if args else None
        elif key in ("delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry"):
            self.check_timing(child, state.defaults)
        elif key == "inhibit_on_failure":
            state.inhibit_default = True
        else:
            self.skip(child)

    def method(self, node: Node) -> str | None:
        args = self.arg(node)
        if args and args[0].upper() not in METHODS:
            self.bad(node, f"{args[0]!r} is not NAT, DR or TUN")
            return None
        return METHODS[args[0].upper()] if args else None

    def sorry_server(self, node: Node, vs: dict[str, Any]) -> None:
        if not node.args or canonical_ip(node.args[0]) is None:
            self.bad(node, "needs ADDRESS [PORT]")
            return
        address = canonical_ip(node.args[0])
        port = to_int(node.args[1]) if len(node.args) > 1 else vs.get("port") or None
        vs["sorry_server"] = endpoint(address, port) if port else address
        if len(node.args) > 2:
            self.skip(node, f"extra arguments {' '.join(node.args[2:])!r} ignored")

    def real_server(self, node: Node, state: _VsState) -> None:
        if not node.args or canonical_ip(node.args[0]) is None:
            self.bad(node, "needs ADDRESS [PORT]")
            return
        port = to_int(node.args[1]) if len(node.args) > 1 else state.vs.get("port", 0)
        rs: dict[str, Any] = {"address": canonical_ip(node.args[0]), "port": port}
        checks: list[tuple[Node, dict[str, Any]]] = []
        inhibit = state.inhibit_default
        defaults = dict(state.defaults)
        for child in self.block(node):
            key = child.keyword
            if key == "weight":
                rs["weight"] = self.integer(child)
            elif key == "inhibit_on_failure":
                inhibit = True
            elif key in ("uthreshold", "lthreshold"):
                rs["upper_threshold" if key[0] == "u" else "lower_threshold"] = self.integer(child)
            elif key in ("lb_kind", "lvs_method"):
                rs["method"] = self.method(child)
            elif key in CHECKERS:
                checks.append((child, self.checker(child, port or 0, defaults)))
            elif key in ("delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry"):
                self.check_timing(child, defaults)
            elif key in OTHER_CHECKERS:
                self.skip(child, "this check type is not supported: the real server is never checked")
            elif key.startswith("notify_"):
                self.skip(child, "directord has no per-real-server notify scripts (use the metrics or status)")
            else:
                self.skip(child)
        for extra, _ in checks[1:]:
            self.skip(extra, "directord runs one check per real server: only the first checker is used")
        state.real_servers.append((node, rs, checks[0] if checks else None, inhibit))

    # --- checks -----------------------------------------------------------------------------

    def check_timing(self, node: Node, check: dict[str, Any]) -> None:
        key = node.keyword
        if key in ("retry", "nb_get_retry"):
            retries = self.integer(node)
            if retries is not None:
                check["fall"] = retries + 1
        elif key == "delay_loop":
            check["interval"] = self.duration(node)
        elif key == "connect_timeout":
            check["timeout"] = self.duration(node)
        else:
            check["transition_interval"] = self.duration(node)

    def checker(self, node: Node, rs_port: int, defaults: dict[str, Any]) -> dict[str, Any]:
        types = {"TCP_CHECK": "tcp", "HTTP_GET": "http", "SSL_GET": "https", "MISC_CHECK": "exec"}
        check: dict[str, Any] = {"type": types[node.keyword], **defaults}
        urls = 0
        for child in self.block(node):
            key = child.keyword
            if key in ("retry", "nb_get_retry", "delay_loop", "connect_timeout", "delay_before_retry"):
                self.check_timing(child, check)
            elif key == "connect_port":
                port = self.integer(child)
                if port is not None and port != rs_port:
                    check["port"] = port
            elif key == "url" and check["type"] in ("http", "https"):
                urls += 1
                if urls == 1:
                    self.url(child, check)
                else:
                    self.skip(child, "directord checks one URL per real server: only the first is used")
            elif key == "virtualhost" and check["type"] in ("http", "https"):
                args = self.arg(child)
                if args:
                    check["host"] = args[0]
            elif key == "misc_path" and check["type"] == "exec":
                self.misc_path(child, check)
            elif key == "misc_timeout" and check["type"] == "exec":
                check["timeout"] = self.duration(child)
            elif key == "misc_dynamic" and check["type"] == "exec":
                check["dynamic_weight"] = True
            else:
                self.skip(child)
        if check["type"] in ("http", "https"):
            check.setdefault("expect_status", ["200-299"])
        if check["type"] == "exec":
            check.setdefault("timeout", check.get("interval", seconds(DEFAULT_DELAY_LOOP)))
        return check

    def url(self, node: Node, check: dict[str, Any]) -> None:
        for child in self.block(node):
            key = child.keyword
            if key == "path":
                args = self.arg(child)
                if args:
                    check["path"] = args[0]
            elif key == "status_code":
                check["expect_status"] = [int(a) if a.isdigit() else a for a in child.args]
            elif key == "regex":
                args = self.arg(child)
                if args:
                    check["expect_body"] = args[0]
            elif key == "digest":
                self.skip(child, "directord does not compare body digests (use expect_body with a regex)")
            else:
                self.skip(child)

    def misc_path(self, node: Node, check: dict[str, Any]) -> None:
        text = " ".join(node.args)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            self.bad(node, f"cannot split the command: {exc}")
            return
        if not argv:
            self.bad(node, "needs a program")
            return
        check["command"] = argv
        if len(argv) > 1:
            self.skip(node, f"split into argv {argv!r}; directord runs no shell")

    def finish_vs(self, node: Node, state: _VsState) -> None:
        """Choose the virtual server's check and failure mode from its real servers."""
        vs = state.vs
        if "protocol" not in vs and not vs.get("fwmark"):
            vs["protocol"] = "udp"
            self.conv.note(node.file, node.line, "virtual_server", "no protocol line: keepalived (2.2.7, checked "
                           "against the kernel table) then creates a UDP service, so udp is imported; add "
                           "\"protocol TCP\" to the source if TCP was meant")
        vs["name"] = vs_name(vs.get("address"), vs.get("port"), vs.get("fwmark"),
                             vs.get("protocol", "tcp"), self.names)
        vs.setdefault("method", "nat")
        if state.persistence:
            vs["persistence_timeout"] = state.persistence
        elif vs.get("persistence_netmask") is not None:
            del vs["persistence_netmask"]
            self.conv.note(node.file, node.line, "persistence_granularity", "has no effect without persistence")
        family = "ipv6" if any(":" in rs["address"] for _, rs, _, _ in state.real_servers) else "ipv4"
        if vs.get("fwmark") and family == "ipv6":
            vs["family"] = "ipv6"
        vs["check"] = self.merged_check(state)
        vs["on_failure"] = self.on_failure(state)
        vs["real_server"] = [rs for _, rs, _, _ in state.real_servers]
        order = ["name", "address", "port", "fwmark", "family", "protocol", "scheduler", "method",
                 "persistence_timeout", "persistence_netmask", "one_packet", "quorum", "sorry_server",
                 "on_failure", "check", "real_server"]
        items = dict(vs)
        vs.clear()
        vs.update({k: items[k] for k in order if k in items and items[k] is not None})

    def merged_check(self, state: _VsState) -> dict[str, Any]:
        chosen: dict[str, Any] | None = None
        first_address: str | None = None
        for rs_node, rs, pair, _ in state.real_servers:
            check = pair[1] if pair else {"type": "none"}
            if chosen is None:
                chosen = check
            elif check != chosen:
                self.conv.note(rs_node.file, rs_node.line, f"real_server {endpoint(rs['address'], rs['port'])}",
                               _difference(check, chosen, rs["address"], first_address))
            if first_address is None:
                first_address = rs["address"]
        check = dict(chosen or {"type": "none"})
        if check["type"] != "none":
            check.setdefault("interval", seconds(DEFAULT_DELAY_LOOP))
            if check["type"] != "exec":
                check.setdefault("timeout", seconds(DEFAULT_CONNECT_TIMEOUT))
            check["rise"] = 1
            check.setdefault("fall", DEFAULT_RETRY + 1)
            check["initial"] = state.initial
            if state.virtualhost and check["type"] in ("http", "https"):
                check.setdefault("host", state.virtualhost)
            if check["type"] != "exec" and "port" not in check and any(
                    rs["port"] == 0 for _, rs, _, _ in state.real_servers):
                if not state.vs.get("port"):
                    node = next(pair[0] for _, _, pair, _ in state.real_servers if pair)
                    self.skip(node, "real servers with port 0 and no connect_port: nothing to check, check type none")
                    return {"type": "none"}
                check["port"] = state.vs["port"]
        order = ["type", "path", "host", "expect_status", "expect_body", "command", "dynamic_weight", "port",
                 "interval", "timeout", "transition_interval", "rise", "fall", "initial"]
        return {k: check[k] for k in order if k in check and check[k] is not None}

    def on_failure(self, state: _VsState) -> str:
        flags = [inhibit for _, _, _, inhibit in state.real_servers]
        if flags and any(flags) and not all(flags):
            node = state.real_servers[flags.index(not flags[0])][0]
            self.conv.note(node.file, node.line, "inhibit_on_failure",
                           "set on some real servers only; directord uses the first real server's choice for all")
        return "quiesce" if flags and flags[0] else "remove"


def _difference(check: dict[str, Any], chosen: dict[str, Any] | None, address: str, first: str | None) -> str:
    """Why a real server's check cannot be kept, with the fix when it only names its own address."""
    reason = "its check differs from the first real server's, which directord uses for all"
    if chosen and first and check.get("type") == "exec" == chosen.get("type"):
        renamed = [arg.replace(address, first) for arg in check.get("command", [])]
        if {**check, "command": renamed} == chosen:
            reason += (": the commands differ only by the real server's address; directord passes it in "
                       "DIRECTORD_ADDRESS, so make the script read that")
    return reason


class _VsState:
    """What is collected while reading one virtual_server block."""

    def __init__(self, vs: dict[str, Any]) -> None:
        self.vs = vs
        self.persistence: str | None = None
        self.initial = "up"
        self.virtualhost: str | None = None
        self.inhibit_default = False
        self.defaults: dict[str, Any] = {}
        self.real_servers: list[tuple[Node, dict[str, Any], tuple[Node, dict[str, Any]] | None, bool]] = []


def convert(path: str) -> Conversion:
    """Read keepalived.conf at PATH (and its includes) into a directord config."""
    return convert_braced(path, _Keepalived)
