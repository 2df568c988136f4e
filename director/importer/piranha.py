"""piranha / pulse lvs.cf -> directord config.

lvs.cf is `key = value` lines with `virtual NAME { ... }` blocks holding
`server NAME { ... }` blocks; the brace tokenizer of `lexer` reads it. pulse
fails over between a primary and a backup with its own heartbeat: that becomes
one VRRP instance carrying every virtual address (and the NAT router's), written
for the primary, with its advert interval a third of pulse's deadtime.
nanny's timeout / reentry (seconds) become fall / rise counts of a check interval
that divides both when it can (else an approximation, listed). Inactive entries
(`active = 0`) are left out, as pulse leaves them out of the table, with a remark:
importing them with weight 0 would put servers an admin switched off into the table.
Within a block the last line of a key wins, so a block's lines are collected
first and tables of handlers turn them into output, in a fixed order, at its end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from director.importer import Conversion, seconds
from director.importer.common import Service, canonical_ip, mask_to_prefix, to_float, to_int
from director.importer.lexer import Node, convert_braced
from director.importer.table import Reader, Table

METHODS = {"direct": "dr", "nat": "nat", "tunnel": "tun"}
CHECK_INTERVAL = 2.0  # directord's default; nanny's timing is re-expressed in these steps...
MAX_EXACT_INTERVAL = 6.0  # ...or in steps up to this long that express it exactly
DEFAULT_TIMEOUT = 10.0
DEFAULT_REENTRY = 180.0
PRIMARY_PRIORITY, BACKUP_PRIORITY = 150, 100
# Global keys pulse's heartbeat and the services read; any other global line is listed.
GLOBALS = frozenset({"primary", "backup", "backup_active", "heartbeat", "keepalive", "deadtime", "network",
                     "service", "nat_router", "nat_nmask"})
# Global keys with nothing to carry over, and why (a remark each).
NOTHING_TO_CARRY = {
    "serial_no": "the piranha GUI's revision counter: nothing to carry over",
    "heartbeat_port": "VRRP is IP protocol 112 and needs no port",
    "debug_level": "pulse's log detail: directord logs at [global] log_level",
    "rsh_command": "pulse's remote shell between the directors: directord runs no commands on its peer",
    "reservation_conflict_action": "used by failover (fos) services' shared disks only",
    "primary_shared": "used by failover (fos) services' shared disks only",
    "backup_shared": "used by failover (fos) services' shared disks only",
}
_ESCAPES = {"\\r": "\r", "\\n": "\n", "\\t": "\t", "\\\\": "\\"}


def _value(node: Node) -> str:
    args = node.args[1:] if node.args and node.args[0] == "=" else node.args
    return " ".join(args)


def _unescape(text: str) -> str:
    return re.sub(r"\\[rnt\\]", lambda m: _ESCAPES[m.group(0)], text)


def _literal(text: str) -> str:
    """A regex matching TEXT literally, escaping only what is special (readable in TOML)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


@dataclass
class _Virtual:
    """One `virtual NAME { ... }` block: its settings (key -> last line; each handler takes out
    its own, what is left is listed), its server blocks and the service being filled."""

    node: Node
    options: dict[str, Node]
    servers: list[Node]
    service: Service = field(default_factory=lambda: Service(on_failure="remove"))
    fwmark_node: Node | None = None
    check_port: int | None = None  # a fwmark service's real servers keep the client's port; nanny checks this


class _Piranha(Reader):
    """Reads lvs.cf: the global settings, the virtual blocks, and the VIPs pulse would fail over."""

    def __init__(self, conv: Conversion) -> None:
        super().__init__(conv)
        self.globals: dict[str, Node] = {}
        self.vips: list[tuple[str, str | None, Node]] = []

    def run(self, nodes: list[Node]) -> None:
        """Global lines are settings (a service reads `network` as set so far); blocks go to BLOCKS."""
        for node in nodes:
            if node.children is None:
                self.globals[node.keyword] = node
            else:
                BLOCKS.read(self, node, None)
        for key, node in self.globals.items():
            if key in NOTHING_TO_CARRY:
                self.remark(node, NOTHING_TO_CARRY[key])
            elif key not in GLOBALS and key not in INSTANCE_GLOBALS:
                self.skip(node)
        service = self.globals.get("service")
        if service and _value(service) != "lvs":
            self.skip(service, f"service = {_value(service)} is not supported: the lvs sections are imported")
        if self.vips:
            self.conv.config["vrrp_instance"] = [_instance(self)]


def _unsupported_block(reader: _Piranha, node: Node, _state: None) -> None:
    reader.skip(node, "block not supported by directord")


BLOCKS: Table[_Piranha, Node, None] = Table(fallback=_unsupported_block)
BLOCKS.says("failover (fos) services are not supported: directord balances with IPVS only", "failover")
SERVICE: Table[_Piranha, Node, Service] = Table()
SERVER: Table[_Piranha, Node, dict[str, Any]] = Table()


# --- global: pulse's heartbeat as one VRRP instance ----------------------------------------------


def _instance(p: _Piranha) -> dict[str, Any]:
    """One VRRP instance for every virtual address, as seen from the primary."""
    first_address, first_device, first_node = p.vips[0]
    instance: dict[str, Any] = {"name": "pulse", "interface": first_device or "eth0", "vrid": 1,
                                "priority": PRIMARY_PRIORITY, "version": 3}
    p.conv.remark(first_node.file, first_node.line, "virtual address",
                  "pulse's heartbeat becomes VRRP instance \"pulse\" with vrid 1: make sure no other VRRP "
                  "router on this network uses vrid 1")
    if first_device is None:
        p.skip(first_node, "no device given for the virtual address: interface eth0 assumed")
    instance["virtual_ips"] = _instance_vips(p, instance["interface"], ":" in first_address, first_address)
    _nat_router(p, instance, ":" in first_address)
    for key, node in p.globals.items():
        if key in INSTANCE_GLOBALS:
            INSTANCE_GLOBALS[key](p, node, instance)
    _heartbeat(p, instance)
    _primary(p, instance, ":" in first_address)
    _backup(p, instance, ":" in first_address)
    return instance


def _nat_router(p: _Piranha, instance: dict[str, Any], ipv6: bool) -> None:
    """nat_router = ADDRESS DEVICE[:ALIAS]: the real servers' gateway, which pulse moves with
    the VIPs; one more address of the instance, on its own device."""
    node = p.globals.get("nat_router")
    if node is None:
        return
    words = _value(node).split()
    address = canonical_ip(words[0]) if words else None
    if address is None or len(words) < 2:
        p.bad(node, "needs ADDRESS DEVICE[:ALIAS]")
        return
    if (":" in address) != ipv6:
        p.skip(node, "another address family than the VIPs: add a second VRRP instance for it by hand")
        return
    mask = p.globals.get("nat_nmask")
    prefix = mask_to_prefix(_value(mask)) if mask is not None else None
    device, _, alias = words[1].partition(":")
    entry: dict[str, Any] = {"address": f"{address}/{prefix if prefix is not None else (128 if ipv6 else 32)}"}
    if device != instance["interface"]:
        entry["dev"] = device
    if alias and not ipv6:
        entry["label"] = words[1]
    instance["virtual_ips"].append(entry if len(entry) > 1 else entry["address"])


def _monitor_links(p: _Piranha, node: Node, instance: dict[str, Any]) -> None:
    """pulse fails over when the VIPs' link goes down: VRRP's fault on its own link, as by default."""
    if _value(node) == "0":
        instance["track_own_interface"] = False


def _syncdaemon(p: _Piranha, node: Node, instance: dict[str, Any]) -> None:
    if _value(node) == "1":
        p.conv.config.setdefault("ipvs", {})["sync_daemon"] = {"interface": instance["interface"]}
        p.remark(node, f"the IPVS sync daemon runs on {instance['interface']}, master while this director is")


def _state_command(p: _Piranha, node: Node, instance: dict[str, Any]) -> None:
    """active_cmd / inactive_cmd: run when this director takes over / hands over the VIPs."""
    words = _value(node).split()
    if not words:
        p.bad(node, "needs a command")
        return
    if re.search(r"[|&;<>()$`\\\"'*?~]", _value(node)):
        p.skip(node, "has shell syntax: directord runs an argv without a shell, so wrap it in a script")
        return
    instance["notify_master" if node.keyword == "active_cmd" else "notify_backup"] = words


INSTANCE_GLOBALS = {"monitor_links": _monitor_links, "syncdaemon": _syncdaemon,
                    "active_cmd": _state_command, "inactive_cmd": _state_command}


def _instance_vips(p: _Piranha, interface: str, ipv6: bool, first: str) -> list[str]:
    vips: list[str] = []
    for address, device, node in p.vips:
        if (":" in address) != ipv6:
            p.skip(node, f"{address} is another address family than {first}: "
                   "add a second VRRP instance for it by hand")
        elif device not in (None, interface):
            p.skip(node, f"{address} is on {device}, not {interface}: add a VRRP instance for that interface by hand")
        elif address not in vips:
            vips.append(address)
    return vips


def _primary(p: _Piranha, instance: dict[str, Any], ipv6: bool) -> None:
    primary = p.globals.get("primary")
    if primary is None:
        return
    address = canonical_ip(_value(primary))
    if address and (":" in address) == ipv6:
        instance["unicast_src"] = address
    p.remark(primary, f"this config is written for the primary (priority {PRIMARY_PRIORITY}); on the "
             f"backup set priority = {BACKUP_PRIORITY} and swap unicast_src and unicast_peers")


def _backup(p: _Piranha, instance: dict[str, Any], ipv6: bool) -> None:
    backup, active = p.globals.get("backup"), p.globals.get("backup_active")
    if backup is None or (active is not None and _value(active) != "1"):
        return
    address = canonical_ip(_value(backup))
    if address and (":" in address) == ipv6:
        instance["unicast_peers"] = [address]
    else:
        p.skip(backup, "backup is not an address of the VIPs' family: it is not a unicast peer")


def _heartbeat(p: _Piranha, instance: dict[str, Any]) -> None:
    keepalive = p.globals.get("keepalive")
    if keepalive is not None:
        value = to_float(_value(keepalive))
        if value is None or value <= 0:
            p.bad(keepalive, "must be a number of seconds")
        else:
            instance["advert_interval"] = seconds(min(round(value, 2), 40.0))
    deadtime = p.globals.get("deadtime")
    dead = to_float(_value(deadtime)) if deadtime is not None else None
    if deadtime is not None and (dead is None or dead <= 0):
        p.bad(deadtime, "must be a number of seconds")
    elif deadtime is not None and dead is not None:
        interval = min(max(round(dead / 3, 2), 0.01), 40.0)
        instance["advert_interval"] = seconds(interval)
        p.remark(deadtime, f"advert_interval = {seconds(interval)} (deadtime / 3, not keepalive): a backup "
                           "declares the master dead after 3 missed adverts, so after deadtime, as pulse does")
    heartbeat = p.globals.get("heartbeat")
    if heartbeat is not None and _value(heartbeat) == "0":
        p.skip(heartbeat, "heartbeat = 0 (no failover) has no equivalent: the VRRP instance still runs")


# --- virtual services -------------------------------------------------------------------------


@BLOCKS.on("virtual")
def _virtual(p: _Piranha, node: Node, _state: None) -> None:
    block = _read_virtual(p, node)
    name = node.args[0] if node.args else f"virtual_{node.line}"
    active = block.options.pop("active", None)
    if active is not None and _value(active) == "0":
        p.remark(node, f"virtual {name} is inactive (active = 0): not imported, as pulse leaves it out")
        return
    _address(p, block)
    service = block.service
    if service.address is None and block.fwmark_node is None:
        p.skip(node, f"virtual {name} has no address (or fwmark): not imported, as pulse cannot set it up")
        return
    _method(p, service)
    SERVICE.apply(p, block.options, service)
    service.real_server = [rs for server in block.servers if (rs := _server(p, server, service)) is not None]
    service.check = _check(p, block)
    for key, child in block.options.items():
        p.skip(child, f"{key} is not supported by directord")
    service.take_name(p.names)
    p.conv.config.setdefault("virtual_server", []).append(service.output())


def _read_virtual(p: _Piranha, node: Node) -> _Virtual:
    block = _Virtual(node, {}, [])
    for child in node.children or []:
        if child.children is None:
            block.options[child.keyword] = child
        elif child.keyword == "server":
            block.servers.append(child)
        else:
            p.skip(child, "block not supported by directord")
    return block


def _address(p: _Piranha, block: _Virtual) -> None:
    """address = IP [DEVICE[:ALIAS]], with port, fwmark and vip_nmask: the service and its VIP."""
    options, service = block.options, block.service
    address_node, fwmark_node = options.pop("address", None), options.pop("fwmark", None)
    port_node, mask_node = options.pop("port", None), options.pop("vip_nmask", None)
    if address_node is None:
        return
    words = _value(address_node).split()
    address = canonical_ip(words[0]) if words else None
    if address is None:
        p.bad(address_node, f"{_value(address_node)!r} is not an address")
        return
    device = words[1].split(":")[0] if len(words) > 1 else None
    prefix = mask_to_prefix(_value(mask_node)) if mask_node else None
    if ":" in address and prefix is None:
        prefix = 128
    p.vips.append((f"{address}/{prefix if prefix is not None else 32}", device, address_node))
    port = to_int(_value(port_node)) if port_node else None
    if fwmark_node is not None:
        service.fwmark = to_int(_value(fwmark_node))
        service.family = "ipv6" if ":" in address else None
        block.fwmark_node, block.check_port = fwmark_node, port
        return
    service.address, service.port = address, port
    if port is None:
        p.bad(address_node, "needs port (or fwmark)")


def _method(p: _Piranha, service: Service) -> None:
    """The global `network` (as set before this block) is every service's forwarding method."""
    network = p.globals.get("network")
    method = _value(network) if network else "direct"
    service.method = METHODS.get(method)
    if service.method is None and network is not None:
        p.bad(network, f"{method!r} is not direct, nat or tunnel")


# SERVICE runs in the order written here: pmask needs to know whether persistent was set.


@SERVICE.on("scheduler")
def _scheduler(p: _Piranha, node: Node, service: Service) -> None:
    service.scheduler = _value(node)


@SERVICE.on("protocol")
def _protocol(p: _Piranha, node: Node, service: Service) -> None:
    service.protocol = _value(node).lower()


@SERVICE.on("persistent")
def _persistent(p: _Piranha, node: Node, service: Service) -> None:
    value = to_int(_value(node))
    if value:
        service.persistence_timeout = seconds(value)


@SERVICE.on("pmask")
def _pmask(p: _Piranha, node: Node, service: Service) -> None:
    if service.persistence_timeout is not None:
        service.persistence_netmask = mask_to_prefix(_value(node))
    else:
        p.remark(node, "not imported: without persistent it has no effect, under pulse either")


@SERVICE.on("load_monitor")
def _load_monitor(p: _Piranha, node: Node, service: Service) -> None:
    if _value(node) != "none":
        p.skip(node, f"load_monitor = {_value(node)} is not supported: an exec check with dynamic_weight = true "
               "sets a real server's weight from its exit code (exit 2 + weight)")

def _sorry_server(p: _Piranha, node: Node, service: Service) -> None:
    service.sorry_server = canonical_ip(_value(node).split()[0]) if _value(node) else None


@SERVICE.on("quiesce_server")
def _quiesce_server(p: _Piranha, node: Node, service: Service) -> None:
    if _value(node) == "1":
        p.skip(node, "resetting every server's connection counts when one returns has no "
               "equivalent (slow_start is the closest)")


def _server(p: _Piranha, node: Node, service: Service) -> dict[str, Any] | None:
    """One `server NAME { ... }` block as a real server, or None when it is inactive or has no address."""
    options = {child.keyword: child for child in node.children or []}
    active = options.pop("active", None)
    label = node.args[0] if node.args else "server"
    if active is not None and _value(active) == "0":
        p.remark(node, f"server {label} is inactive (active = 0): not imported, as pulse leaves it out")
        return None
    address_node = options.pop("address", None)
    address = canonical_ip(_value(address_node).split()[0]) if address_node and _value(address_node) else None
    if address is None:
        p.bad(address_node or node, "needs an address")
        return None
    entry: dict[str, Any] = {"address": address, "port": service.port or 0}
    SERVER.apply(p, options, entry)
    for key, child in options.items():
        p.skip(child, f"server option {key} is not supported by directord")
    return entry


@SERVER.on("port")
def _server_port(p: _Piranha, node: Node, entry: dict[str, Any]) -> None:
    entry["port"] = to_int(_value(node))


@SERVER.on("weight")
def _server_weight(p: _Piranha, node: Node, entry: dict[str, Any]) -> None:
    entry["weight"] = to_int(_value(node))


# --- nanny's check -------------------------------------------------------------------------------


def _check(p: _Piranha, block: _Virtual) -> dict[str, Any]:
    check = _probe(p, block)
    if check["type"] == "none":
        _unchecked_timing(p, block.options)
        return check
    if block.service.fwmark and check["type"] != "exec":
        if block.check_port is None:
            p.skip(block.fwmark_node or block.node,
                   "a fwmark service without port has nothing to check: check type none")
            _unchecked_timing(p, block.options)
            return {"type": "none"}
        check["port"] = block.check_port
    _timing(p, check, block.options)
    return check


def _probe(p: _Piranha, block: _Virtual) -> dict[str, Any]:
    """What nanny sends and expects: send_program, or send / expect on a TCP service."""
    options = block.options
    send, expect = options.pop("send", None), options.pop("expect", None)
    program, regex = options.pop("send_program", None), options.pop("use_regex", None)
    protocol = block.service.protocol if block.service.protocol is not None else "tcp"
    check: dict[str, Any] = {"type": "tcp" if protocol == "tcp" else "none"}
    if program is not None:
        text = _value(program).replace("%h", "$DIRECTORD_ADDRESS")
        p.skip(program, "run through /bin/sh -c with %h replaced by $DIRECTORD_ADDRESS; directord judges "
               "the exit code, so the script must exit 0 when healthy (expect is not compared)")
        if expect is not None:
            p.skip(expect, "expect with send_program is not supported: judge the exit code instead")
        return {"type": "exec", "command": ["/bin/sh", "-c", text]}
    if check["type"] == "tcp":
        if send is not None:
            check["send"] = _unescape(_value(send))
        if expect is not None:
            text = _unescape(_value(expect))
            check["expect"] = text if regex and _value(regex) == "1" else _literal(text)
    elif send is not None or expect is not None:
        p.skip(send or expect, "send/expect need a TCP service")
    return check


def _unchecked_timing(p: _Piranha, options: dict[str, Node]) -> None:
    for key in ("timeout", "reentry"):
        node = options.pop(key, None)
        if node is not None:
            p.remark(node, "not imported: nothing is checked, so nothing times out or re-enters")


def _timing(p: _Piranha, check: dict[str, Any], options: dict[str, Node]) -> None:
    """nanny's timeout and reentry (seconds) as fall and rise counts of one check interval:
    the largest whole number of seconds, at most MAX_EXACT_INTERVAL, that divides both, when they
    are whole seconds (then exact); else CHECK_INTERVAL, rounding up (listed)."""
    nodes = {key: options.pop(key, None) for key in ("timeout", "reentry")}
    values = {key: to_float(_value(node)) if node else default
              for (key, node), default in zip(nodes.items(), (DEFAULT_TIMEOUT, DEFAULT_REENTRY), strict=True)}
    for key, value in values.items():
        if value is None or value <= 0:
            p.bad(nodes[key] or Node(key, [], "", 0), "must be a number of seconds")
            return
    whole = [int(v) for v in values.values() if v is not None and v == int(v)]
    interval = float(math.gcd(*whole)) if len(whole) == 2 else CHECK_INTERVAL
    interval = interval if 1 <= interval <= MAX_EXACT_INTERVAL else CHECK_INTERVAL
    check["interval"] = seconds(interval)
    for key, name in (("timeout", "fall"), ("reentry", "rise")):
        value, node = values[key], nodes[key]
        assert value is not None
        check[name] = max(1, math.ceil(value / interval))
        if node is None:
            continue
        said = f"{value:g}s as {name} = {check[name]} checks every {seconds(interval)}"
        if check[name] * interval == value:
            p.remark(node, said)
        else:
            p.skip(node, f"{said} (approximated: {check[name] * interval:g}s)")
    check["timeout"] = seconds(interval if check["type"] == "exec" else min(interval, 1.0))


def convert(path: str) -> Conversion:
    """Read lvs.cf at PATH into a directord config."""
    return convert_braced(path, _Piranha)
