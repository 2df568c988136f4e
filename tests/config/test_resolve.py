"""Which strings are host names, and what the resolver gives back for them."""

from __future__ import annotations

import ipaddress

import pytest

from director.config.load import ConfigError, parse_config
from director.config.resolve import is_host_name, real_server_names, resolve


@pytest.mark.parametrize(("text", "name"), [
    ("web1", True), ("web-1.example.org", True), ("web1.example.org.", True),
    ("192.0.2.1", False), ("2001:db8::1", False), ("1.2.3", False), ("-web", False), ("web_1", False),
    ("a" * 64, False), ("", False), ("web 1", False),
])
def test_host_names(text: str, name: bool) -> None:
    assert is_host_name(text) is name


def test_names_are_collected_from_real_servers_only() -> None:
    data = {"virtual_server": [{"address": "vip.example", "real_server": [
        {"address": "web1"}, {"address": "192.0.2.5"}, {"address": 7}]}, "junk"]}
    assert real_server_names(data) == {"web1"}


def test_localhost_resolves() -> None:
    found = resolve(["localhost"])["localhost"]
    assert not isinstance(found, str) and ipaddress.ip_address("127.0.0.1") in found


def test_without_resolution_a_name_is_refused_as_before() -> None:
    with pytest.raises(ConfigError, match='"web1" is not an IPv4 or IPv6 address'):
        parse_config({"virtual_server": [{"name": "w", "address": "192.0.2.1", "port": 80,
                                          "real_server": [{"address": "web1"}]}]})
