"""piranha / pulse lvs.cf -> directord config.

lvs.cf is `key = value` lines with `virtual NAME { ... }` blocks holding
`server NAME { ... }` blocks; the brace tokenizer of `lexer` reads it. pulse
fails over between a primary and a backup with its own heartbeat: that becomes
one VRRP instance carrying every virtual address, written for the primary.
nanny's timeout / reentry (seconds) become fall / rise counts of directord's
check interval: an approximation, always listed. Inactive entries (`active = 0`)
are left out, as pulse leaves them out of the table, and listed: importing them
with weight 0 would put servers an admin switched off into the table.
"""

from __future__ import annotations

import math
import re
from typing import Any

from director.importer import Conversion, seconds
from director.importer.common import canonical_ip, mask_to_prefix, to_float, to_int, vs_name
from director.importer.lexer import Node, convert_braced

METHODS = {"direct": "dr", "nat": "nat", "tunnel": "tun"}
CHECK_INTERVAL = 2.0  # directord's default; nanny's timing is re-expressed in these steps
DEFAULT_TIMEOUT = 10.0
DEFAULT_REENTRY = 180.0
PRIMARY_PRIORITY, BACKUP_PRIORITY = 150, 100
_ESCAPES = {"\\r": "\r", "\\n": "\n", "\\t": "\t", "\\\\": "\\"}


def _value(node: Node) -> str:
    args = node.args[1:] if node.args and node.args[0] == "=" else node.args
    return " ".join(args)


def _unescape(text: str) -> str:
    return re.sub(r"\\[rnt\\]", lambda m: _ESCAPES[m.group(0)], text)


def _literal(text: str) -> str:
    """A regex matching TEXT literally, escaping only what is special (readable in TOML)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


class _Piranha:
    def __init__(self, conv: Conversion) -> None:
        self.conv = conv
        self.errors: list[str] = []
        self.names: set[str] = set()
        self.globals: dict[str, Node] = {}
        self.vips: list[tuple[str, str | None, Node]] = []

    def skip(self, node: Node, reason: str = "no directord equivalent") -> None:
        self.conv.note(node.file, node.line, node.keyword, reason)

    def bad(self, node: Node, reason: str) -> None:
        self.errors.append(f"{node.file}:{node.line}: {node.keyword}: {reason}")

    def run(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.keyword == "virtual" and node.children is not None:
                self.virtual(node)
            elif node.keyword == "failover" and node.children is not None:
                self.skip(node, "failover (fos) services are not supported: directord balances with IPVS only")
            elif node.children is None:
                self.globals[node.keyword] = node
            else:
                self.skip(node, "block not supported by directord")
        self.global_options()

    # --- global: heartbeat and method --------------------------------------------------

    def global_options(self) -> None:
        handled = {"primary", "backup", "backup_active", "heartbeat", "keepalive", "deadtime", "network",
                   "service"}
        for key, node in self.globals.items():
            if key not in handled:
                self.skip(node)
        service = self.globals.get("service")
        if service and _value(service) != "lvs":
            self.skip(service, f"service = {_value(service)} is not supported: the lvs sections are imported")
        self.instance()

    def instance(self) -> None:
        """One VRRP instance for every virtual address, as seen from the primary."""
        primary, backup = self.globals.get("primary"), self.globals.get("backup")
        if not self.vips:
            return
        first_address, first_device, first_node = self.vips[0]
        family = ":" in first_address
        instance: dict[str, Any] = {"name": "pulse", "interface": first_device or "eth0", "vrid": 1,
                                    "priority": PRIMARY_PRIORITY, "version": 3}
        self.conv.note(first_node.file, first_node.line, "virtual address",
                       "pulse's heartbeat becomes VRRP instance \"pulse\" with vrid 1: make sure no other VRRP "
                       "router on this network uses vrid 1")
        if first_device is None:
            self.skip(first_node, "no device given for the virtual address: interface eth0 assumed")
        vips = []
        for address, device, node in self.vips:
            if (":" in address) != family:
                self.skip(node, f"{address} is another address family than {first_address}: "
                          "add a second VRRP instance for it by hand")
            elif device not in (None, instance["interface"]):
                self.skip(node, f"{address} is on {device}, not {instance['interface']}: "
                          "add a VRRP instance for that interface by hand")
            elif address not in vips:
                vips.append(address)
        instance["virtual_ips"] = vips
        self.heartbeat(instance)
        if primary is not None:
            address = canonical_ip(_value(primary))
            if address and (":" in address) == family:
                instance["unicast_src"] = address
            self.skip(primary, f"this config is written for the primary (priority {PRIMARY_PRIORITY}); on the "
                      f"backup set priority = {BACKUP_PRIORITY} and swap unicast_src and unicast_peers")
        active = self.globals.get("backup_active")
        if backup is not None and (active is None or _value(active) == "1"):
            address = canonical_ip(_value(backup))
            if address and (":" in address) == family:
                instance["unicast_peers"] = [address]
            else:
                self.skip(backup, "backup is not an address of the VIPs' family: it is not a unicast peer")
        self.conv.config["vrrp_instance"] = [instance]

    def heartbeat(self, instance: dict[str, Any]) -> None:
        keepalive = self.globals.get("keepalive")
        if keepalive is not None:
            value = to_float(_value(keepalive))
            if value is None or value <= 0:
                self.bad(keepalive, "must be a number of seconds")
            else:
                instance["advert_interval"] = seconds(min(round(value, 2), 40.0))
        deadtime = self.globals.get("deadtime")
        if deadtime is not None:
            self.skip(deadtime, "VRRP declares the master dead after about 3 advert intervals "
                      "(keepalive), not after deadtime")
        heartbeat = self.globals.get("heartbeat")
        if heartbeat is not None and _value(heartbeat) == "0":
            self.skip(heartbeat, "heartbeat = 0 (no failover) has no equivalent: the VRRP instance still runs")

    # --- virtual services -----------------------------------------------------------------

    def virtual(self, node: Node) -> None:
        options = {child.keyword: child for child in node.children or [] if child.children is None}
        servers = [child for child in node.children or [] if child.keyword == "server" and child.children is not None]
        for child in node.children or []:
            if child.children is not None and child.keyword != "server":
                self.skip(child, "block not supported by directord")
        name = node.args[0] if node.args else f"virtual_{node.line}"
        active = options.pop("active", None)
        if active is not None and _value(active) == "0":
            self.skip(node, f"virtual {name} is inactive (active = 0): not imported")
            return
        vs: dict[str, Any] = {}
        self.address(vs, options)
        if "address" not in vs and "fwmark" not in vs:
            self.bad(node, "needs address (and port) or fwmark")
            return
        self.service(vs, options)
        vs["real_server"] = [rs for server in servers if (rs := self.server(server, vs)) is not None]
        vs["check"] = self.check(vs, options)
        for key, child in options.items():
            self.skip(child, f"{key} is not supported by directord")
        vs["name"] = vs_name(vs.get("address"), vs.get("port"), vs.get("fwmark"), vs.get("protocol", "tcp"),
                             self.names)
        order = ["name", "address", "port", "fwmark", "family", "protocol", "scheduler", "method",
                 "persistence_timeout", "persistence_netmask", "sorry_server", "on_failure", "check", "real_server"]
        self.conv.config.setdefault("virtual_server", []).append({k: vs[k] for k in order if vs.get(k) is not None})

    def address(self, vs: dict[str, Any], options: dict[str, Node]) -> None:
        address_node = options.pop("address", None)
        fwmark_node = options.pop("fwmark", None)
        port_node = options.pop("port", None)
        mask_node = options.pop("vip_nmask", None)
        if address_node is None:
            return
        words = _value(address_node).split()
        address = canonical_ip(words[0]) if words else None
        if address is None:
            self.bad(address_node, f"{_value(address_node)!r} is not an address")
            return
        device = words[1].split(":")[0] if len(words) > 1 else None
        prefix = mask_to_prefix(_value(mask_node)) if mask_node else None
        if ":" in address and prefix is None:
            prefix = 128
        self.vips.append((f"{address}/{prefix if prefix is not None else 32}", device, address_node))
        if fwmark_node is not None:
            vs["fwmark"] = to_int(_value(fwmark_node))
            if ":" in address:
                vs["family"] = "ipv6"
            # Real servers of a fwmark service keep the client's port; nanny checks this one.
            vs["_check_port"] = to_int(_value(port_node)) if port_node else None
            vs["_fwmark_node"] = fwmark_node
            return
        vs["address"] = address
        vs["port"] = to_int(_value(port_node)) if port_node else None
        if vs["port"] is None:
            self.bad(address_node, "needs port (or fwmark)")

    def service(self, vs: dict[str, Any], options: dict[str, Node]) -> None:
        network = self.globals.get("network")
        method = _value(network) if network else "direct"
        vs["method"] = METHODS.get(method)
        if vs["method"] is None and network is not None:
            self.bad(network, f"{method!r} is not direct, nat or tunnel")
        if "scheduler" in options:
            vs["scheduler"] = _value(options.pop("scheduler"))
        if "protocol" in options:
            vs["protocol"] = _value(options.pop("protocol")).lower()
        if "persistent" in options:
            value = to_int(_value(options.pop("persistent")))
            if value:
                vs["persistence_timeout"] = seconds(value)
        if "pmask" in options:
            mask = options.pop("pmask")
            if "persistence_timeout" in vs:
                vs["persistence_netmask"] = mask_to_prefix(_value(mask))
            else:
                self.skip(mask, "has no effect without persistent")
        if "sorry_server" in options:
            sorry = options.pop("sorry_server")
            vs["sorry_server"] = canonical_ip(_value(sorry).split()[0]) if _value(sorry) else None
        vs["on_failure"] = "remove"
        if "quiesce_server" in options:
            quiesce = options.pop("quiesce_server")
            if _value(quiesce) == "1":
                self.skip(quiesce, "resetting every server's connection counts when one returns has no "
                          "equivalent (slow_start is the closest)")

    def server(self, node: Node, vs: dict[str, Any]) -> dict[str, Any] | None:
        options = {child.keyword: child for child in node.children or []}
        active = options.pop("active", None)
        label = node.args[0] if node.args else "server"
        if active is not None and _value(active) == "0":
            self.skip(node, f"server {label} is inactive (active = 0): not imported, as pulse leaves it out")
            return None
        address_node = options.pop("address", None)
        address = canonical_ip(_value(address_node).split()[0]) if address_node and _value(address_node) else None
        if address is None:
            self.bad(address_node or node, "needs an address")
            return None
        rs: dict[str, Any] = {"address": address, "port": vs.get("port") or 0}
        if "port" in options:
            rs["port"] = to_int(_value(options.pop("port")))
        if "weight" in options:
            rs["weight"] = to_int(_value(options.pop("weight")))
        for key, child in options.items():
            self.skip(child, f"server option {key} is not supported by directord")
        return rs

    # --- nanny's check -------------------------------------------------------------------------

    def check(self, vs: dict[str, Any], options: dict[str, Node]) -> dict[str, Any]:
        send, expect = options.pop("send", None), options.pop("expect", None)
        program = options.pop("send_program", None)
        regex = options.pop("use_regex", None)
        check: dict[str, Any] = {"type": "tcp" if vs.get("protocol", "tcp") == "tcp" else "none"}
        if program is not None:
            text = _value(program).replace("%h", "$DIRECTORD_ADDRESS")
            check = {"type": "exec", "command": ["/bin/sh", "-c", text]}
            self.skip(program, "run through /bin/sh -c with %h replaced by $DIRECTORD_ADDRESS; directord judges "
                      "the exit code, so the script must exit 0 when healthy (expect is not compared)")
            if expect is not None:
                self.skip(expect, "expect with send_program is not supported: judge the exit code instead")
        elif check["type"] == "tcp":
            if send is not None:
                check["send"] = _unescape(_value(send))
            if expect is not None:
                text = _unescape(_value(expect))
                check["expect"] = text if regex and _value(regex) == "1" else _literal(text)
        elif send is not None or expect is not None:
            self.skip(send or expect, "send/expect need a TCP service")
        if check["type"] == "none":
            return check
        if vs.get("fwmark") and check["type"] != "exec":
            if vs.get("_check_port") is None:
                self.skip(vs["_fwmark_node"], "a fwmark service without port has nothing to check: check type none")
                return {"type": "none"}
            check["port"] = vs["_check_port"]
        self.timing(check, options)
        return check

    def timing(self, check: dict[str, Any], options: dict[str, Node]) -> None:
        check["interval"] = seconds(CHECK_INTERVAL)
        for key, field, default in (("timeout", "fall", DEFAULT_TIMEOUT), ("reentry", "rise", DEFAULT_REENTRY)):
            node = options.pop(key, None)
            value = to_float(_value(node)) if node else default
            if value is None:
                self.bad(node, "must be a number of seconds")
                continue
            check[field] = max(1, math.ceil(value / CHECK_INTERVAL))
            if node is not None:
                self.skip(node, f"{value:g}s approximated as {field} = {check[field]} checks "
                          f"every {seconds(CHECK_INTERVAL)}")
        check["timeout"] = seconds(CHECK_INTERVAL if check["type"] == "exec" else min(CHECK_INTERVAL, 1.0))


def convert(path: str) -> Conversion:
    """Read lvs.cf at PATH into a directord config."""
    return convert_braced(path, _Piranha)
