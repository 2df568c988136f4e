"""What an instance carries with mastership, turned into kernel requests (sans-IO, with a fake
AddressManager; the real kernel is in test_carried_netns.py)."""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

import pytest

from director.config.load import parse_config
from director.config.model import VirtualAddress, VirtualRoute, VirtualRule
from vrrp import carried, rtnl

net, ip, iface = ipaddress.ip_network, ipaddress.ip_address, ipaddress.ip_interface


def instance(**keys: Any) -> Any:
    table = {"name": "VI_1", "interface": "eth0", "vrid": 1, "virtual_ips": ["192.0.2.10/24"]} | keys
    return parse_config({"vrrp_instance": [table]}).vrrp_instances[0]


class FakeAddrs:
    """Records each call; `refuse` maps a call name to the errno the kernel would answer."""

    def __init__(self, refuse: dict[str, int] | None = None, rules_there: int = 0) -> None:
        self.calls: list[tuple[str, Any, ...]] = []
        self.refuse = refuse or {}
        self.rules_there = rules_there

    def _call(self, name: str, *args: Any) -> bool:
        self.calls.append((name, *args))
        if name in self.refuse:
            raise OSError(self.refuse[name], errno.errorcode[self.refuse[name]])
        return True

    def add(self, index: int, address: Any, **options: Any) -> bool:
        return self._call("add", index, str(address), options)

    def remove(self, index: int, address: Any, label: str = "") -> bool:
        return self._call("remove", index, str(address), label)

    def add_route(self, route: rtnl.Route) -> bool:
        return self._call("add_route", route)

    def remove_route(self, route: rtnl.Route) -> bool:
        return self._call("remove_route", route)

    def add_rule(self, rule: rtnl.Rule) -> bool:
        return self._call("add_rule", rule)

    def remove_rule(self, rule: rtnl.Rule) -> bool:
        self.calls.append(("remove_rule", rule))
        if self.rules_there:
            self.rules_there -= 1
            return True
        return False


INDEXES = {"eth0": 2, "eth1": 3}


def carrier(addrs: FakeAddrs) -> carried.Carrier:
    return carried.Carrier(addrs, INDEXES.__getitem__)  # type: ignore[arg-type]


def test_items_are_the_addresses_then_routes_then_rules_and_the_adverts_keep_virtual_ips() -> None:
    vi = instance(virtual_ips=[{"address": "192.0.2.10/24", "label": "eth0:v"}], excluded_ips=["2001:db8::1/64"],
                  virtual_routes=[{"to": "10.8.0.0/16", "via": "192.0.2.254"}],
                  virtual_rules=[{"from": "10.0.0.0/8", "table": 100, "priority": 10}])
    items = carried.items_of(vi)
    assert [carried.kind_of(item) for item in items] == ["vip", "vip", "route", "rule"]
    assert vi.virtual_ips == (iface("192.0.2.10/24"),)
    assert carried.as_item(iface("192.0.2.9/24")) == VirtualAddress(iface("192.0.2.9/24"))


def test_adds_go_addresses_first_and_removes_rules_first() -> None:
    vi = instance(virtual_ips=["192.0.2.10/24", {"address": "10.0.0.1/24", "dev": "eth1", "label": "eth1:vip",
                                                 "scope": "link", "broadcast": "+", "noprefixroute": True}],
                  virtual_routes=[{"to": "10.8.0.0/16", "via": "192.0.2.254", "src": "192.0.2.10", "table": 100}],
                  virtual_rules=[{"from": "10.0.0.0/8", "table": 100, "priority": 10}])
    addrs = FakeAddrs()
    items = carried.items_of(vi)
    assert carrier(addrs).change(items[::-1], True, "eth0", 2) == []
    assert [call[0] for call in addrs.calls] == ["add", "add", "add_route", "add_rule"]
    assert addrs.calls[0] == ("add", 3, "10.0.0.1/24", {"broadcast": ip("10.0.0.255"), "scope": 253,
                                                        "label": "eth1:vip", "noprefixroute": True})
    assert addrs.calls[1] == ("add", 2, "192.0.2.10/24", {"broadcast": None, "scope": 0, "label": "",
                                                          "noprefixroute": False})
    addrs.calls.clear()
    assert carrier(addrs).change(items, False, "eth0", 2) == []
    assert [call[0] for call in addrs.calls] == ["remove_rule", "remove_route", "remove", "remove"]
    assert addrs.calls[2:] == [("remove", 2, "192.0.2.10/24", ""), ("remove", 3, "10.0.0.1/24", "eth1:vip")]


@pytest.mark.parametrize(("route", "scope"), [
    (VirtualRoute(net("10.8.0.0/16"), via=ip("192.0.2.254")), rtnl.RT_SCOPE_UNIVERSE),
    (VirtualRoute(net("10.8.0.0/16"), dev="eth1"), rtnl.RT_SCOPE_LINK),
    (VirtualRoute(net("10.8.0.1/32"), type="local", dev="eth1"), rtnl.RT_SCOPE_HOST),
    (VirtualRoute(net("10.8.0.0/16"), type="blackhole"), rtnl.RT_SCOPE_UNIVERSE),
    (VirtualRoute(net("2001:db8::/32"), dev="eth1"), rtnl.RT_SCOPE_UNIVERSE),
    (VirtualRoute(net("10.8.0.0/16"), dev="eth1", scope="host"), rtnl.RT_SCOPE_HOST),
])
def test_a_route_without_scope_gets_the_one_ip_route_would_give_it(route: VirtualRoute, scope: int) -> None:
    kernel = carried.kernel_route(route, 3)
    assert kernel.scope == scope and kernel.protocol == rtnl.RTPROT_KEEPALIVED
    assert kernel.type == rtnl.RTN_TYPES[route.type] and kernel.dst == route.to and kernel.oif == 3


def test_a_route_names_its_device_by_index_and_a_rule_keeps_its_fields() -> None:
    addrs = FakeAddrs()
    route = VirtualRoute(net("10.8.0.0/16"), via=ip("10.0.0.254"), dev="eth1", src=ip("10.0.0.1"), metric=7,
                         table=100)
    carrier(addrs).change([route], True, "eth0", 2)
    assert addrs.calls == [("add_route", rtnl.Route(net("10.8.0.0/16"), 100, rtnl.RTN_UNICAST, 0, 18,
                                                    ip("10.0.0.254"), 3, ip("10.0.0.1"), 7))]
    rule = VirtualRule(101, to=net("2001:db8::/32"), priority=4, iif="eth0", oif="eth1", fwmark=3, fwmask=15)
    assert carried.kernel_rule(rule) == rtnl.Rule(6, 101, None, net("2001:db8::/32"), 4, "eth0", "eth1", 3, 15, 18)


def test_a_rule_without_priority_is_first_removed_with_its_copies_so_it_is_there_once() -> None:
    addrs = FakeAddrs(rules_there=2)  # an earlier run left two copies
    rule = VirtualRule(100, from_=net("10.0.0.0/8"))
    carrier(addrs).change([rule], True, "eth0", 2)
    assert [call[0] for call in addrs.calls] == ["remove_rule", "remove_rule", "remove_rule", "add_rule"]
    addrs = FakeAddrs()
    carrier(addrs).change([VirtualRule(100, from_=net("10.0.0.0/8"), priority=9)], True, "eth0", 2)
    assert [call[0] for call in addrs.calls] == ["add_rule"]  # with a priority, EEXIST tells it is there


def test_a_refused_item_is_reported_and_the_others_still_go() -> None:
    vi = instance(virtual_routes=[{"to": "10.8.0.0/16", "via": "192.0.2.254"}],
                  virtual_rules=[{"from": "10.0.0.0/8", "table": 100, "priority": 10}])
    addrs = FakeAddrs(refuse={"add_route": errno.ENETUNREACH})
    refused = carrier(addrs).change(carried.items_of(vi), True, "eth0", 2)
    assert [(carried.kind_of(r.item), r.error) for r in refused] == [("route", "Network is unreachable")]
    assert [call[0] for call in addrs.calls] == ["add", "add_route", "add_rule"]
    missing = carried.Carrier(FakeAddrs(), lambda name: (_ for _ in ()).throw(OSError(errno.ENODEV, "No such device")))
    refused = missing.change([VirtualAddress(iface("10.0.0.1/24"), dev="eth9")], True, "eth0", 2)
    assert [r.error for r in refused] == ["No such device"]
