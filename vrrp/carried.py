"""What an instance carries with mastership: its addresses with their `ip addr` options, its
routes and its policy rules (keepalived's virtual_ipaddress, virtual_ipaddress_excluded,
virtual_routes and virtual_rules), put on the host and taken off in the order the kernel needs.

Addresses go first and come off last: a route's `src` must be a local address, and the kernel
drops the routes that use an address when it goes. Rules follow the routes, so no packet is
steered into a table before its routes are there. The translation to the kernel's terms
(`kernel_route`, `kernel_rule`, `address_options`) is pure; `Carrier` is the thin edge that
sends it through `AddressManager` and reports each refusal without stopping at it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from director.config.model import VirtualAddress, VirtualRoute, VirtualRule
from vrrp import rtnl

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig
    from vrrp.addresses import AddressManager

Item = VirtualAddress | VirtualRoute | VirtualRule
MAX_RULE_COPIES = 8  # removes of one rule without priority, for copies an earlier run may have left


def items_of(cfg: VrrpInstanceConfig) -> tuple[Item, ...]:
    """Everything the instance carries, in the order it is added."""
    return (*cfg.carried_addresses, *cfg.virtual_routes, *cfg.virtual_rules)


def as_item(thing: Hashable) -> Item:
    """A bare address (a config built in code, or an older state machine's list) is an address with no options."""
    if isinstance(thing, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return VirtualAddress(thing)
    assert isinstance(thing, VirtualAddress | VirtualRoute | VirtualRule), thing
    return thing


_ORDER = {VirtualAddress: 0, VirtualRoute: 1, VirtualRule: 2}


def in_order(things: Iterable[Hashable], add: bool) -> list[Item]:
    """Addresses, routes, rules to add; rules, routes, addresses to remove (stable within a kind)."""
    items = [as_item(thing) for thing in things]
    return sorted(items, key=lambda item: _ORDER[type(item)] * (1 if add else -1))


def kind_of(item: Item) -> str:
    """The word of this kind in counters and logs: vip, route, rule."""
    return {VirtualAddress: "vip", VirtualRoute: "route", VirtualRule: "rule"}[type(item)]


def address_options(entry: VirtualAddress, add: bool) -> dict[str, Any]:
    """`AddressManager.add` / `remove` keywords of one address: a remove names only the label."""
    if not add:
        return {"label": entry.label}
    return {"broadcast": entry.broadcast, "scope": rtnl.RT_SCOPES[entry.scope], "label": entry.label,
            "noprefixroute": entry.noprefixroute}


def kernel_route(route: VirtualRoute, oif: int) -> rtnl.Route:
    """The route as `ip route add` would send it: the same scope rules when none is given
    (host for a local route, link for an IPv4 unicast route without a gateway, else global)."""
    kind = rtnl.RTN_TYPES[route.type]
    if route.scope is not None:
        scope = rtnl.RT_SCOPES[route.scope]
    elif route.to.version == 6:
        scope = rtnl.RT_SCOPE_UNIVERSE
    elif kind == rtnl.RTN_LOCAL:
        scope = rtnl.RT_SCOPE_HOST
    elif kind == rtnl.RTN_UNICAST and route.via is None:
        scope = rtnl.RT_SCOPE_LINK
    else:
        scope = rtnl.RT_SCOPE_UNIVERSE
    return rtnl.Route(route.to, route.table, kind, scope, rtnl.RTPROT_KEEPALIVED, route.via, oif, route.src,
                      route.metric)


def kernel_rule(rule: VirtualRule) -> rtnl.Rule:
    return rtnl.Rule(rule.ip_family, rule.table, rule.from_, rule.to, rule.priority, rule.iif, rule.oif,
                     rule.fwmark, rule.fwmask, rtnl.RTPROT_KEEPALIVED)


@dataclass(frozen=True)
class Refused:
    """One item the kernel (or the host) refused."""

    item: Item
    error: str


class Carrier:
    """Adds and removes one instance's items through an `AddressManager`, on `interface`
    (ifindex `ifindex`) unless an item names its own device."""

    def __init__(self, addrs: AddressManager, index_of: Callable[[str], int] = socket.if_nametoindex) -> None:
        self.addrs = addrs
        self.index_of = index_of
        self.changed: list[Item] = []  # the items the kernel added or removed (not already so)

    def change(self, things: Iterable[Hashable], add: bool, interface: str, ifindex: int) -> list[Refused]:
        """Every item added (or removed) before this returns, in `in_order`; the refusals."""
        refused = []
        for item in in_order(things, add):
            try:
                if self._one(item, add, interface, ifindex):
                    self.changed.append(item)
            except OSError as exc:
                refused.append(Refused(item, os.strerror(exc.errno) if exc.errno else str(exc)))
        return refused

    def _index(self, dev: str, interface: str, ifindex: int) -> int:
        return ifindex if not dev or dev == interface else self.index_of(dev)

    def _one(self, item: Item, add: bool, interface: str, ifindex: int) -> bool:
        """True when the kernel changed something (the item was not already so)."""
        if isinstance(item, VirtualAddress):
            index = self._index(item.dev, interface, ifindex)
            options = address_options(item, add)
            if add:
                return self.addrs.add(index, item.address, **options)
            return self.addrs.remove(index, item.address, **options)
        if isinstance(item, VirtualRoute):
            route = kernel_route(item, self.index_of(item.dev) if item.dev else 0)
            return self.addrs.add_route(route) if add else self.addrs.remove_route(route)
        return self._rule(kernel_rule(item), add)

    def _rule(self, rule: rtnl.Rule, add: bool) -> bool:
        """A rule without priority is new on every add (the kernel numbers it), so it is first
        removed, copies included: then adding it again, on a reload or after a crash, keeps one."""
        if add and rule.priority is not None:
            return self.addrs.add_rule(rule)
        removed = 0
        while removed < MAX_RULE_COPIES and self.addrs.remove_rule(rule):
            removed += 1
        return self.addrs.add_rule(rule) if add else removed > 0
