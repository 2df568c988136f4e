"""The dns, udp, ping and smtp check keys: what loads, and the one-line errors for the rest."""

from __future__ import annotations

import pytest

from director.config.load import ConfigError, parse_config

SERVICE = {"name": "ns", "address": "192.0.2.53", "port": 53, "protocol": "udp",
           "real_server": [{"address": "10.0.0.1"}]}


def check_of(check: dict, **service) -> object:
    return parse_config({"virtual_server": [SERVICE | service | {"check": check}]}).virtual_servers[0].check


def errors(check: dict, **service) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config({"virtual_server": [SERVICE | service | {"check": check}]}, "f.toml")
    return info.value.lines


def test_dns_keys_load():
    check = check_of({"type": "dns", "query_name": "www.example.com.", "query_type": "AAAA",
                      "query_class": "IN", "expect_rcode": "NXDOMAIN", "transport": "tcp",
                      "expect": "2001:db8::"})
    assert (check.query_name, check.query_type, check.expect_rcode, check.transport) == (
        "www.example.com.", "AAAA", "NXDOMAIN", "tcp")
    default = check_of({"type": "dns"})
    assert (default.query_name, default.query_type, default.query_class, default.expect_rcode) == (
        ".", "SOA", "IN", "NOERROR")


@pytest.mark.parametrize(("name", "why"), [
    ("www..example", "has an empty label (two dots in a row, or a leading dot)"),
    (".example", "has an empty label (two dots in a row, or a leading dot)"),
    ("a" * 64 + ".example", "has a label longer than 63 characters"),
    (".".join(["a" * 60] * 5), "is longer than 255 bytes"),
    ("www example", "must be ASCII without spaces or control characters"),
    ("bücher.example", "must be ASCII without spaces or control characters"),
])
def test_bad_query_names_are_one_line_each(name, why):
    assert errors({"type": "dns", "query_name": name}) == [
        f'f.toml: virtual_server "ns".check.query_name: {why}, got {name!r}']


def test_dns_options_elsewhere_and_bad_choices():
    assert errors({"type": "udp", "query_type": "A"}) == [
        'f.toml: virtual_server "ns".check.query_type: applies only to dns checks, not type "udp"']
    assert errors({"type": "dns", "query_type": "AXFR"}) == [
        'f.toml: virtual_server "ns".check.query_type: "AXFR" is not one of A, NS, CNAME, SOA, PTR, MX, TXT, '
        'AAAA, SRV, ANY']
    assert errors({"type": "dns", "expect": "(a+)+$"})[0].startswith(
        'f.toml: virtual_server "ns".check.expect: ')


def test_udp_keys_load_and_require_reply_is_udp_only():
    check = check_of({"type": "udp", "send": "ping\n", "expect": "^pong", "require_reply": False})
    assert (check.send, check.expect, check.require_reply) == (b"ping\n", "^pong", False)
    assert errors({"type": "tcp", "require_reply": False}, protocol="tcp") == [
        'f.toml: virtual_server "ns".check.require_reply: applies only to udp checks, not type "tcp"']


def test_smtp_helo_name():
    assert check_of({"type": "smtp", "helo_name": "lb1.example.net"}, protocol="tcp").helo_name == "lb1.example.net"
    assert check_of({"type": "smtp", "helo_name": "[192.0.2.1]"}, protocol="tcp").helo_name == "[192.0.2.1]"
    for bad in ("lb1 example", "lb1\r\nMAIL FROM:<x>", ""):
        assert errors({"type": "smtp", "helo_name": bad}, protocol="tcp") == [
            'f.toml: virtual_server "ns".check.helo_name: must be a host name or an address literal such as '
            f'"[192.0.2.1]", got {bad!r}']


def test_ping_needs_no_port_but_dns_does():
    fwmark = {"name": "ns", "fwmark": 5, "real_server": [{"address": "10.0.0.1"}]}
    config = parse_config({"virtual_server": [fwmark | {"check": {"type": "ping"}}]})
    assert config.virtual_servers[0].check.type == "ping"
    with pytest.raises(ConfigError) as info:
        parse_config({"virtual_server": [fwmark | {"check": {"type": "dns"}}]}, "f.toml")
    assert 'check.port: is required: dns checks need a port' in info.value.lines[0]
