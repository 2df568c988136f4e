"""keepalived's address, route and rule lines -> directord's virtual_ips / excluded_ips entries,
virtual_routes and virtual_rules.

keepalived reads these lines like `ip addr|route|rule add` (keepalived.conf(5), "virtual_ipaddress"
and "Static routes/addresses/rules"): words in any order after the address, a keyword then its
value. Each function reads one line's words and returns the directord entry, or None when the
line cannot be carried over; `note(reason)` records, for that line, what was dropped or changed.
Options directord has map exactly and are not noted; so are the ones that mean in keepalived what
directord always does (`no_track`, `-nodad`, protocol keepalived).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from director.importer.common import to_int

Note = Callable[[str], None]

SCOPES = {"global": "global", "universe": "global", "site": "site", "link": "link", "host": "host",
          "nowhere": "nowhere", "0": "global", "200": "site", "253": "link", "254": "host", "255": "nowhere"}
TABLES = {"main": 254, "local": 255, "default": 253}
RULE_PRIORITY = ("priority", "preference", "order", "pref")
FIRST_UNNUMBERED_RULE = 16384  # keepalived numbers rules without a preference down from here, in file order
# Address options directord has no equivalent for; the address is kept without them.
ADDRESS_FLAGS = {"home": "the home address flag (mobile IPv6)", "mngtmpaddr": "temporary-address management",
                 "autojoin": "multicast autojoin",
                 "use_vmac": "a VMAC per address (it takes the instance's use_vmac, which moves the addresses "
                             "without a dev of their own to vrrp.VRID)"}
ADDRESS_VALUES = {"peer": "point-to-point peer addresses", "preferred_lft": "address lifetimes",
                  "track_group": "track groups (static addresses only in keepalived)"}
# Always so in directord: no_track (a removed address is not watched), -nodad (IPv6 VIPs skip DAD).
ADDRESS_SAME = ("no_track", "-nodad", "nodad")

ROUTE_TYPES = ("unicast", "local", "blackhole", "unreachable", "prohibit", "throw")
# Route options that tune a route's metrics only: the route is kept without them.
ROUTE_TUNING = ("mtu", "advmss", "rtt", "rttvar", "reordering", "window", "cwnd", "ssthresh", "realms",
                "rto_min", "initcwnd", "initrwnd", "features", "quickack", "congctl", "hoplimit", "pref",
                "fastopen_no_cookie", "expires")
# Rule selectors and actions directord does not have: without them the rule would match (or do)
# something else, so it is not carried over.
RULE_UNSUPPORTED = ("not", "tos", "dsfield", "realms", "goto", "l3mdev", "uidrange", "ip_proto", "ipproto",
                    "sport", "dport", "suppress_prefixlength", "suppress_ifgroup", "tun_id", "type", "nat",
                    "blackhole", "prohibit", "unreachable", "nop", "iifgroup", "oifgroup", "flowlabel", "dscp")


def address_entry(words: list[str], note: Note, remark: Note) -> str | dict[str, Any] | None:
    """`ADDRESS[/PREFIX] [brd B] [dev D] [scope S] [label L] [noprefixroute] ...`: a plain string
    when no option carries over, else a table."""
    try:
        interface = ipaddress.ip_interface(words[0])
    except ValueError:
        return None
    entry: dict[str, Any] = {"address": f"{interface.ip}/{interface.network.prefixlen}"}
    v6 = interface.version == 6
    rest, index = words[1:], 0
    while index < len(rest):
        word = rest[index]
        value = rest[index + 1] if index + 1 < len(rest) else None
        index += 1
        if word in ADDRESS_SAME:
            continue
        if word == "noprefixroute":
            entry["noprefixroute"] = True
            continue
        if word in ADDRESS_FLAGS:
            note(f"option {word!r} ignored: directord does not support {ADDRESS_FLAGS[word]}")
            continue
        if value is None:
            note(f"option {word!r} ignored: it needs a value")
            continue
        index += 1
        _address_option(entry, word, value, v6, note, remark)
    return entry if len(entry) > 1 else entry["address"]


def _address_option(entry: dict[str, Any], word: str, value: str, v6: bool, note: Note, remark: Note) -> None:
    if word == "dev":
        entry["dev"] = value
    elif word in ("brd", "broadcast"):
        _broadcast(entry, value, v6, note)
    elif word == "scope":
        _address_scope(entry, value, v6, note, remark)
    elif word == "label" and v6:
        remark(f"label {value!r} left out, as keepalived leaves it out for an IPv6 address")
    elif word == "label":
        entry["label"] = value
    elif word in ADDRESS_VALUES:
        note(f"option '{word} {value}' ignored: directord does not support {ADDRESS_VALUES[word]}")
    else:
        note(f"option '{word} {value}' ignored: not a keepalived address option directord knows")


def _broadcast(entry: dict[str, Any], value: str, v6: bool, note: Note) -> None:
    if v6:
        note(f"option 'brd {value}' ignored: IPv6 has no broadcast address")
        return
    try:
        entry["broadcast"] = value if value in ("+", "-") else str(ipaddress.IPv4Address(value))
    except ValueError:
        note(f"option 'brd {value}' ignored: not an IPv4 address, '+' or '-'")


def _address_scope(entry: dict[str, Any], value: str, v6: bool, note: Note, remark: Note) -> None:
    scope = SCOPES.get(value)
    if scope is None:
        note(f"option 'scope {value}' ignored: not a scope (global, site, link, host, nowhere)")
    elif v6:
        remark(f"scope {value!r} left out, as keepalived leaves it out for an IPv6 address")
    elif scope != "global":
        entry["scope"] = scope


def settle_label(entry: str | dict[str, Any], interface: str | None, note: Note) -> str | dict[str, Any]:
    """A label directord takes: DEV or DEV:NAME of the address's device, at most 15 bytes;
    another is dropped (and noted). Read once the instance's interface is known."""
    if not isinstance(entry, dict) or "label" not in entry:
        return entry
    label, dev = entry["label"], entry.get("dev") or interface or ""
    if len(label.encode()) > 15:
        reason = "is longer than the 15 bytes the kernel keeps"
    elif dev and label != dev and not label.startswith(dev + ":"):
        reason = f'does not start with the device name (directord takes "{dev}" or "{dev}:NAME")'
    else:
        return entry
    note(f"label {label!r} dropped: it {reason}")
    rest = {key: value for key, value in entry.items() if key != "label"}
    return rest if len(rest) > 1 else rest["address"]


def route_entry(words: list[str], note: Note) -> dict[str, Any] | None:
    """`[TYPE] [src A] [to] DEST via|gw G [dev D] [table T] [metric N] [scope S] ...`; None (noted)
    when the route cannot be carried over."""
    route: dict[str, Any] = {}
    inet6, index = False, 0
    dest: str | None = None
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else None
        index += 1
        if word in ROUTE_TYPES:
            route["type"] = word
        elif word in ("inet6", "inet", "no_track"):
            inet6 = inet6 or word == "inet6"
        elif word in ("append", "prepend"):
            if word == "append":
                note("added before another route to the same destination, not after it: directord "
                     "prepends, as keepalived does by default")
        elif word in ("src", "to", "via", "gw", "dev", "oif", "table", "metric", "priority", "preference", "scope",
                      "proto", "protocol") or word in ROUTE_TUNING:
            if value is None:
                note(f"not imported: {word!r} needs a value")
                return None
            index += 1
            if not _route_option(route, word, value, note):
                return None
        elif word in ("or", "nexthop", "onlink", "tos", "dsfield", "vrf", "encap"):
            note(f"not imported: directord does not support {word!r} in a route")
            return None
        elif dest is None:
            dest = word
        else:
            note(f"not imported: {word!r} is not a route option directord knows")
            return None
    if (dest is None) == ("to" not in route):
        note("not imported: " + ("no destination" if dest is None else "two destinations"))
        return None
    return _settle_route(route, dest, inet6, note)


_ROUTE_KEYS = {"to": "to", "via": "via", "gw": "via", "src": "src", "dev": "dev", "oif": "dev"}


def _route_option(route: dict[str, Any], word: str, value: str, note: Note) -> bool:
    """One `word value` pair into ROUTE; False (noted) when the route cannot be carried over."""
    if word in _ROUTE_KEYS:
        route[_ROUTE_KEYS[word]] = value
    elif word in ("table", "metric", "priority", "preference"):
        number = _table(value, note) if word == "table" else _u32(word, value, note)
        if number is None:
            return False
        key = "table" if word == "table" else "metric"
        if number != (TABLES["main"] if key == "table" else 0):
            route[key] = number
    elif word == "scope":
        if value not in SCOPES:
            note(f"not imported: {value!r} is not a scope")
            return False
        route["scope"] = SCOPES[value]
    elif word in ("proto", "protocol"):
        if value not in ("keepalived", "18"):
            note(f"option '{word} {value}' ignored: directord's routes carry protocol keepalived")
    else:
        note(f"option '{word} {value}' ignored: directord sets no route metrics")
    return True


def _settle_route(route: dict[str, Any], dest: str | None, inet6: bool, note: Note) -> dict[str, Any] | None:
    """The destination and the checks directord's loader makes, so the output loads."""
    to = route.pop("to", None) or dest
    if to in ("default", "all"):
        to = "::/0" if inet6 else "0.0.0.0/0"
    try:
        network = ipaddress.ip_network(to)
    except ValueError as exc:
        why = "the kernel refuses a destination with host bits set" if "host bits" in str(exc) else "not a network"
        note(f"not imported: {to!r}: {why}")
        return None
    for key in ("via", "src"):
        try:
            if key in route and ipaddress.ip_address(route[key]).version != network.version:
                note(f"not imported: {key} {route[key]} is not of the family of {network}")
                return None
        except ValueError:
            note(f"not imported: {key} {route[key]!r} is not an address")
            return None
    kind = route.get("type", "unicast")
    if kind not in ("unicast", "local") and ("via" in route or "dev" in route):
        note(f"not imported: a {kind} route takes no via or dev (the kernel refuses it)")
        return None
    if (kind == "local" and "dev" not in route) or (kind == "unicast" and not {"via", "dev"} & set(route)):
        note("not imported: the route needs via or dev" if kind == "unicast" else "not imported: needs dev")
        return None
    if kind == "unicast":
        route.pop("type", None)
        if network.version == 4 and "via" not in route:
            route.setdefault("scope", "global")  # keepalived's, where `ip route` (and directord) would say link
    return {"to": str(network), **route}


def rule_entry(words: list[str], note: Note) -> dict[str, Any] | None:
    """`[from A] [to B] [iif I] [oif O] [fwmark M[/MASK]] [priority N] table T`; None (noted) when
    the rule cannot be carried over."""
    rule: dict[str, Any] = {}
    inet6, index = False, 0
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else None
        index += 1
        if word in ("inet6", "inet", "no_track"):
            inet6 = inet6 or word == "inet6"
            continue
        if word in RULE_UNSUPPORTED:
            note(f"not imported: directord does not support {word!r} in a rule")
            return None
        if word not in ("from", "to", "table", "lookup", *RULE_PRIORITY, "iif", "dev", "oif", "fwmark", "protocol",
                        "proto"):
            note(f"not imported: {word!r} is not a rule option directord knows")
            return None
        if value is None:
            note(f"not imported: {word!r} needs a value")
            return None
        index += 1
        if not _rule_option(rule, word, value, note):
            return None
    if "table" not in rule:
        note("not imported: directord's rules look up a table, and this one names none")
        return None
    families = {ipaddress.ip_network(rule[key]).version for key in ("from", "to") if key in rule}
    if len(families) > 1:
        note("not imported: it mixes IPv4 and IPv6")
        return None
    if inet6 and not families:
        rule["family"] = "ipv6"
    return rule


def _rule_option(rule: dict[str, Any], word: str, value: str, note: Note) -> bool:
    if word in ("from", "to"):
        if value == "all":
            return True
        try:  # the kernel matches a rule's networks under their mask: host bits do not count
            rule[word] = str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            note(f"not imported: {word} {value!r} is not a network")
            return False
    elif word in ("table", "lookup", *RULE_PRIORITY):
        table = word in ("table", "lookup")
        number = _table(value, note) if table else _u32(word, value, note)
        if number is None:
            return False
        rule["table" if table else "priority"] = number
    elif word in ("iif", "dev", "oif"):
        rule["oif" if word == "oif" else "iif"] = value
    elif word == "fwmark":
        mark, _, mask = value.partition("/")
        numbers = [to_int(mark), to_int(mask) if mask else 0]
        if any(n is None or not 0 <= n < 2**32 for n in numbers) or not numbers[0]:
            note(f"not imported: fwmark {value!r} is not MARK[/MASK]")
            return False
        rule["fwmark"] = numbers[0]
        if mask:
            rule["fwmask"] = numbers[1]
    elif value not in ("keepalived", "18"):
        note(f"option '{word} {value}' ignored: directord's rules carry protocol keepalived")
    return True


def _table(value: str, note: Note) -> int | None:
    """A table number, or main / local / default; None (noted) for another name."""
    table = TABLES.get(value) or to_int(value)
    if table is None or not 1 <= table < 2**32:
        note(f"not imported: table {value!r} is not a number (directord takes table numbers; see "
             "/etc/iproute2/rt_tables)")
        return None
    return table


def _u32(word: str, value: str, note: Note) -> int | None:
    number = to_int(value)
    if number is None or not 0 <= number < 2**32:
        note(f"not imported: {word} {value!r} is not a number")
        return None
    return number
