"""keepalived's virtual_ipaddress options, virtual_ipaddress_excluded, virtual_routes and
virtual_rules: what carries over exactly is not flagged, everything else is, and the output loads."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from director.config.model import VirtualAddress, VirtualRoute, VirtualRule
from director.importer.keepalived import convert
from tests.importer.helpers import imported

CONF = """\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        192.0.2.10/24 dev eth1 label eth1:vip scope link brd + noprefixroute no_track
        192.0.2.11/24 brd 192.0.2.255 dev eth0 label eth0
        192.0.2.12 label eth0:1
        192.0.2.13 label other:1
        192.0.2.14 peer 192.0.2.99 home
    }
    virtual_ipaddress_excluded {
        2001:db8::10/64 -nodad
        2001:db8::11/64 label eth0:6
        198.51.100.7 dev eth1
    }
    virtual_routes {
        src 192.0.2.10 to 10.8.0.0/16 via 192.0.2.254 dev eth0 metric 5 table 100
        default gw 192.0.2.1
        blackhole 10.9.0.0/16
        10.7.0.0/24 dev eth1 scope link table main no_track
        2001:db8:9::/48 via 2001:db8::1 mtu 1400
        10.6.0.0/24 via 192.0.2.254 or 192.0.2.253
        10.5.0.0/24 via 192.0.2.254 table mytable
    }
    virtual_rules {
        from 192.0.2.0/24 table 100 priority 1000
        to 10.8.0.0/16 lookup 100 iif eth0 oif eth1 preference 1001
        fwmark 0x7/0xff table 101 pref 1002
        inet6 fwmark 3 table 102 priority 1003 no_track
        not from 10.0.0.0/8 table 103
        from 10.1.0.0/16 table 104 tos 16
        from 10.2.0.0/16 table 105
    }
}
"""


def convert_text(tmp_path: Path, text: str = CONF) -> tuple:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    conv = convert(str(path))
    config, data = imported(conv, "keepalived")
    return conv, config, data


def line_of(text: str) -> int:
    return next(n for n, line in enumerate(CONF.splitlines(), 1) if text in line)


def test_address_options_carry_over_and_the_adverts_keep_virtual_ipaddress(tmp_path: Path) -> None:
    _, config, data = convert_text(tmp_path)
    vi = config.vrrp_instances[0]
    iface = ipaddress.ip_interface
    assert vi.virtual_ips == tuple(iface(a) for a in ("192.0.2.10/24", "192.0.2.11/24", "192.0.2.12/32",
                                                      "192.0.2.13/32", "192.0.2.14/32"))
    assert vi.carried_addresses[:4] == (
        VirtualAddress(iface("192.0.2.10/24"), "eth1", ipaddress.IPv4Address("192.0.2.255"), "link", "eth1:vip", True),
        VirtualAddress(iface("192.0.2.11/24"), "eth0", ipaddress.IPv4Address("192.0.2.255"), label="eth0"),
        VirtualAddress(iface("192.0.2.12/32"), label="eth0:1"),
        VirtualAddress(iface("192.0.2.13/32")))  # a label another device's name starts is dropped (noted)
    assert vi.excluded_ips == (iface("2001:db8::10/64"), iface("2001:db8::11/64"), iface("198.51.100.7/32"))
    assert [str(a) for a in vi.carried_addresses[5:]] == ["2001:db8::10/64", "2001:db8::11/64",
                                                           "198.51.100.7/32 dev eth1"]
    written = data["vrrp_instance"][0]
    assert written["virtual_ips"][2] == {"address": "192.0.2.12/32", "label": "eth0:1"}
    assert written["virtual_ips"][4] == "192.0.2.14/32"  # no option carried over: a plain string


def test_routes_and_rules_carry_over(tmp_path: Path) -> None:
    _, config, _ = convert_text(tmp_path)
    vi = config.vrrp_instances[0]
    net, ip = ipaddress.ip_network, ipaddress.ip_address
    assert vi.virtual_routes == (
        VirtualRoute(net("10.8.0.0/16"), via=ip("192.0.2.254"), dev="eth0", src=ip("192.0.2.10"), metric=5, table=100),
        VirtualRoute(net("0.0.0.0/0"), via=ip("192.0.2.1")),
        VirtualRoute(net("10.9.0.0/16"), type="blackhole"),
        VirtualRoute(net("10.7.0.0/24"), dev="eth1", scope="link"),
        VirtualRoute(net("2001:db8:9::/48"), via=ip("2001:db8::1")))
    assert vi.virtual_rules == (
        VirtualRule(100, from_=net("192.0.2.0/24"), priority=1000),
        VirtualRule(100, to=net("10.8.0.0/16"), priority=1001, iif="eth0", oif="eth1"),
        VirtualRule(101, priority=1002, fwmark=7, fwmask=255),
        VirtualRule(102, priority=1003, fwmark=3, family=6),
        # keepalived numbers the rules without a preference from 16384 down, the two it reads before this one too
        VirtualRule(105, from_=net("10.2.0.0/16"), priority=16382))


def test_only_what_does_not_carry_over_is_flagged(tmp_path: Path) -> None:
    conv, _, _ = convert_text(tmp_path)
    assert [(u.line, f"{u.directive}: {u.reason}") for u in conv.unmapped] == sorted([
        (line_of("192.0.2.14"), "virtual_ipaddress 192.0.2.14 peer 192.0.2.99 home: option 'peer 192.0.2.99' "
                                "ignored: directord does not support point-to-point peer addresses"),
        (line_of("192.0.2.14"), "virtual_ipaddress 192.0.2.14 peer 192.0.2.99 home: option 'home' ignored: "
                                "directord does not support the home address flag (mobile IPv6)"),
        (line_of("2001:db8:9::/48"), "virtual_routes 2001:db8:9::/48 via 2001:db8::1 mtu 1400: option 'mtu 1400' "
                                     "ignored: directord sets no route metrics"),
        (line_of("or 192.0.2.253"), "virtual_routes 10.6.0.0/24 via 192.0.2.254 or 192.0.2.253: not imported: "
                                    "directord does not support 'or' in a route"),
        (line_of("mytable"), "virtual_routes 10.5.0.0/24 via 192.0.2.254 table mytable: not imported: table "
                             "'mytable' is not a number (directord takes table numbers; see /etc/iproute2/rt_tables)"),
        (line_of("not from"), "virtual_rules not from 10.0.0.0/8 table 103: not imported: directord does not "
                              "support 'not' in a rule"),
        (line_of("tos 16"), "virtual_rules from 10.1.0.0/16 table 104 tos 16: not imported: directord does not "
                            "support 'tos' in a rule"),
        (line_of("192.0.2.13"), "virtual_ipaddress 192.0.2.13 label other:1: label 'other:1' dropped: it does not "
                                'start with the device name (directord takes "eth0" or "eth0:NAME")'),
    ], key=lambda note: note[0])  # in file order, as `directord import` lists them
    remarks = [(r.line, r.reason) for r in conv.remarks if r.directive.startswith("virtual_")]
    assert remarks == [(line_of("eth0:6"), "label 'eth0:6' left out, as keepalived leaves it out for an IPv6 "
                                           "address"),
                       (line_of("10.2.0.0/16"), "no preference: priority 16382, the one keepalived gives it")]


def test_the_corpus_forms_are_no_longer_flagged(tmp_path: Path) -> None:
    """Lines from the public configs of the corpus (shared/corpus/keepalived)."""
    conv, config, _ = convert_text(tmp_path, """\
vrrp_instance VI_1 {
    interface bond0
    virtual_router_id 121
    virtual_ipaddress {
        10.22.10.124/24 dev bond0 label bond0:vip
        180.96.15.19/28 brd 180.96.15.17 dev eno1 label eno1:1
    }
    virtual_ipaddress_excluded {
        192.168.43.221
    }
    virtual_routes {
        10.22.10.0/24 dev bond0 src 10.22.10.124
        10.20.10.0/24 via 10.22.10.254 dev bond0 src 10.22.10.124
        default gw 10.22.10.114
    }
}
""")
    assert conv.unmapped == []
    vi = config.vrrp_instances[0]
    assert [str(a) for a in vi.carried_addresses] == [
        "10.22.10.124/24 dev bond0 label bond0:vip", "180.96.15.19/28 dev eno1 brd 180.96.15.17 label eno1:1",
        "192.168.43.221/32"]
    assert [str(r) for r in vi.virtual_routes] == [  # keepalived gives a route without via scope global
        "10.22.10.0/24 dev bond0 src 10.22.10.124 scope global",
        "10.20.10.0/24 via 10.22.10.254 dev bond0 src 10.22.10.124", "0.0.0.0/0 via 10.22.10.114"]
