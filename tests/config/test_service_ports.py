"""Ports as service names: resolved when the config is read, one clear error otherwise."""

from __future__ import annotations

import pytest

from director.config.load import ConfigError, parse_config


def test_ports_may_be_service_names() -> None:
    config = parse_config({"virtual_server": [{
        "name": "web", "address": "192.0.2.10", "port": "http", "check": {"type": "tcp", "port": "https"},
        "real_server": [{"address": "10.0.0.11", "port": "domain"}, {"address": "10.0.0.12"}]}]})
    vs = config.virtual_servers[0]
    assert (vs.port, vs.check.port) == (80, 443)
    assert [rs.port for rs in vs.real_servers] == [53, 80]


@pytest.mark.parametrize("name", ["nosuchservice", "", "ht tp", "x" * 70])
def test_an_unknown_service_name_is_one_clear_error(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"virtual_server": [{"name": "web", "address": "192.0.2.10", "port": name}]})
    assert f'virtual_server "web".port: "{name}" is neither a port number nor a service name' in str(caught.value)
