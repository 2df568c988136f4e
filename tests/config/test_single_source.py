"""The config model is the one source of defaults and choices.

The loader offers exactly the values of each field's Literal type and reads
defaults from the fields themselves; the IPVS layer takes its names from the
model too. These tests fail when a copy creeps back in.
"""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import socket
from collections.abc import Callable
from typing import Any, get_args

import pytest

from director.config import model
from director.config.load import ConfigError, parse_config
from director.config.model import (
    CHECK_OPTION_TYPES,
    CHECK_TYPES,
    PORT_CHECK_TYPES,
    SCHEDULER_FLAGS,
    SCHEDULERS,
    CheckConfig,
    Config,
    GarpConfig,
    GlobalConfig,
    IpvsConfig,
    RealServerConfig,
    SyncDaemonConfig,
    TrackFileConfig,
    TrackProcessConfig,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VirtualServerConfig,
    VrrpInstanceConfig,
    VrrpScriptConfig,
    VrrpSyncGroupConfig,
    field_choices,
    field_default,
)
from director.ipvs import codec
from director.ipvs import model as ipvs_model
from director.ipvs.memory import MemoryIpvs

SERVICE = {"name": "web", "address": "192.0.2.10", "port": 80}
INSTANCE = {"name": "v", "interface": "eth0", "vrid": 1, "virtual_ips": ["192.0.2.10/24"]}
REAL_SERVER = {"address": "10.0.0.11"}
SCRIPT = {"name": "chk", "command": ["/bin/true"]}
TRACK_FILE = {"name": "prio", "path": "/run/prio"}
TRACK_PROCESS = {"name": "hp", "process": "haproxy"}


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a model's table sits in a document, and how to find what it loaded as."""

    document: Callable[[dict[str, Any]], dict[str, Any]]
    loaded: Callable[[Config], Any]
    key_path: str


def _route(table: dict[str, Any]) -> dict[str, Any]:
    """A route to 10.1.0.0/16 with TABLE's keys; out of eth0 when its type goes out of a device."""
    route = {"to": "10.1.0.0/16"} | table
    return route | ({"dev": "eth0"} if route.get("type", "unicast") in ("unicast", "local") else {})


PLACES: dict[type, Place] = {
    GlobalConfig: Place(lambda t: {"global": t}, lambda c: c.global_, "global"),
    IpvsConfig: Place(lambda t: {"ipvs": t}, lambda c: c.ipvs, "ipvs"),
    SyncDaemonConfig: Place(lambda t: {"ipvs": {"sync_daemon": {"interface": "eth1"} | t}},
                            lambda c: c.ipvs.sync_daemon, "ipvs.sync_daemon"),
    VirtualServerConfig: Place(lambda t: {"virtual_server": [SERVICE | {"real_server": [REAL_SERVER]} | t]},
                               lambda c: c.virtual_servers[0], 'virtual_server "web"'),
    # a udp service: the check type default is then the model's (a tcp service checks tcp)
    CheckConfig: Place(lambda t: {"virtual_server": [SERVICE | {"protocol": "udp", "check": t}]},
                       lambda c: c.virtual_servers[0].check, 'virtual_server "web".check'),
    RealServerConfig: Place(lambda t: {"virtual_server": [SERVICE | {"real_server": [REAL_SERVER | t]}]},
                            lambda c: c.virtual_servers[0].real_servers[0], 'virtual_server "web".real_server[0]'),
    VrrpInstanceConfig: Place(lambda t: {"vrrp_instance": [INSTANCE | t]},
                              lambda c: c.vrrp_instances[0], 'vrrp_instance "v"'),
    GarpConfig: Place(lambda t: {"vrrp_instance": [INSTANCE | {"garp": t}]},
                      lambda c: c.vrrp_instances[0].garp, 'vrrp_instance "v".garp'),
    VirtualAddress: Place(lambda t: {"vrrp_instance": [INSTANCE | {"virtual_ips": [{"address": "192.0.2.10/24"} | t]}]},
                          lambda c: c.vrrp_instances[0].address_options[0], 'vrrp_instance "v".virtual_ips[0]'),
    VirtualRoute: Place(lambda t: {"vrrp_instance": [INSTANCE | {"virtual_routes": [_route(t)]}]},
                        lambda c: c.vrrp_instances[0].virtual_routes[0], 'vrrp_instance "v".virtual_routes[0]'),
    VirtualRule: Place(lambda t: {"vrrp_instance": [INSTANCE | {"virtual_rules": [{"table": 100} | t]}]},
                       lambda c: c.vrrp_instances[0].virtual_rules[0], 'vrrp_instance "v".virtual_rules[0]'),
    VrrpScriptConfig: Place(lambda t: {"vrrp_script": [SCRIPT | t]}, lambda c: c.vrrp_scripts[0],
                            'vrrp_script "chk"'),
    TrackFileConfig: Place(lambda t: {"track_file": [TRACK_FILE | t]}, lambda c: c.track_files[0],
                           'track_file "prio"'),
    TrackProcessConfig: Place(lambda t: {"track_process": [TRACK_PROCESS | t]}, lambda c: c.track_processes[0],
                              'track_process "hp"'),
    VrrpSyncGroupConfig: Place(lambda t: {"vrrp_instance": [INSTANCE | {"sync_group": "g"}],
                                          "vrrp_sync_group": [{"name": "g"} | t]},
                               lambda c: c.vrrp_sync_groups[0], 'vrrp_sync_group "g"'),
}
# keys a choice needs beside it to be valid (an option of one check type, a tunnel of method tun)
NEEDS: dict[tuple[type, str], dict[str, Any]] = {
    (TrackProcessConfig, "param_match"): {"args": []},
    (CheckConfig, "method"): {"type": "http"},
    (CheckConfig, "http_version"): {"type": "http"},
    (CheckConfig, "transport"): {"type": "sip"},
    (CheckConfig, "query_type"): {"type": "dns"},  # dns options (issue 19)
    (CheckConfig, "query_class"): {"type": "dns"},
    (CheckConfig, "expect_rcode"): {"type": "dns"},
    (RealServerConfig, "tunnel_type"): {"method": "tun", "tunnel_port": 6080},
    (RealServerConfig, "tunnel_checksum"): {"method": "tun"},
    (VrrpInstanceConfig, "auth_type"): {"version": 2, "auth_pass": "secret"},  # authentication is VRRPv2's
}

# written in TOML unlike in the model: the family is "ipv4"/"ipv6" and only a fwmark service names it
SPELLED_OTHERWISE = {(VirtualServerConfig, "family"), (VirtualRule, "family")}


def models() -> list[type]:
    return [cls for _, cls in inspect.getmembers(model, dataclasses.is_dataclass) if cls.__module__ == model.__name__]


def choice_fields() -> list[tuple[type, str]]:
    return [(cls, spec.name) for cls in models() for spec in dataclasses.fields(cls)
            if field_choices(cls, spec.name) and (cls, spec.name) not in SPELLED_OTHERWISE]


def cases() -> list[tuple[type, str, Any]]:
    return [(cls, name, value) for cls, name in choice_fields() for value in field_choices(cls, name)]


def load(cls: type, table: dict[str, Any]) -> Any:
    return PLACES[cls].loaded(parse_config(PLACES[cls].document(table)))


def errors(cls: type, table: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(PLACES[cls].document(table), "f")
    return [line.removeprefix("f: ") for line in info.value.lines]


def test_every_model_with_choices_has_a_place_in_these_tests() -> None:
    assert {cls for cls, _ in choice_fields()} <= set(PLACES)


@pytest.mark.parametrize(("cls", "name", "value"), cases(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_choice_of_the_model_is_accepted(cls: type, name: str, value: Any) -> None:
    table = NEEDS.get((cls, name), {}) | {name: value}
    if (cls, name, value) == (CheckConfig, "type", "exec"):
        table["command"] = ["/bin/true"]
    assert getattr(load(cls, table), name) == value


@pytest.mark.parametrize(("cls", "name"), choice_fields(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_value_outside_the_choices_is_refused_with_the_choices_listed(cls: type, name: str) -> None:
    choices = field_choices(cls, name)
    where = f"{PLACES[cls].key_path}.{name}"
    if isinstance(choices[0], int):
        expected = f"{where}: must be in {min(choices)}..{max(choices)}, got {max(choices) + 1}"
        assert expected in errors(cls, {name: max(choices) + 1})
    else:
        expected = f'{where}: "~" is not one of {", ".join(choices)}'
        assert expected in errors(cls, NEEDS.get((cls, name), {}) | {name: "~"})


@pytest.mark.parametrize("family", field_choices(VirtualServerConfig, "family"))
def test_the_family_choices_are_the_models(family: int) -> None:
    config = parse_config({"virtual_server": [{"name": "m", "fwmark": 1, "family": f"ipv{family}"}]})
    assert config.virtual_servers[0].family == family


def test_a_family_outside_the_models_is_refused_with_the_families_listed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"virtual_server": [{"name": "m", "fwmark": 1, "family": "~"}]}, "f")
    names = ", ".join(f"ipv{n}" for n in field_choices(VirtualServerConfig, "family"))
    assert f'f: virtual_server "m".family: "~" is not one of {names}' in info.value.lines


# --- defaults ------------------------------------------------------------------------

# what the places above fill in, and what the loader derives rather than defaults
GIVEN = {
    SyncDaemonConfig: {"interface"},
    VirtualServerConfig: {"name", "address", "port", "fwmark", "family", "real_servers"},
    RealServerConfig: {"address", "port"},  # the port is the service's
    VrrpInstanceConfig: {"name", "interface", "vrid", "virtual_ips"},
    VrrpScriptConfig: {"name", "command"},
    TrackFileConfig: {"name", "path"},
    TrackProcessConfig: {"name", "process"},
    VrrpSyncGroupConfig: {"name"},
    VirtualAddress: {"address"},
    VirtualRoute: {"to", "dev"},
    VirtualRule: {"table"},
}


@pytest.mark.parametrize("cls", list(PLACES), ids=lambda c: c.__name__)
def test_an_empty_table_loads_as_the_model_defaults(cls: type) -> None:
    loaded = load(cls, {})
    for spec in dataclasses.fields(cls):
        if spec.name not in GIVEN.get(cls, set()):
            assert getattr(loaded, spec.name) == field_default(cls, spec.name), spec.name


def test_the_defaults_that_depend_on_another_value() -> None:
    assert load(GlobalConfig, {}).router_id == socket.gethostname() == field_default(GlobalConfig, "router_id")
    assert parse_config({}).global_ == GlobalConfig()
    tcp = parse_config({"virtual_server": [SERVICE | {"check": {}}]}).virtual_servers[0]
    assert tcp.check.type == "tcp"  # a [check] table on a tcp service checks tcp
    assert parse_config({"virtual_server": [SERVICE]}).virtual_servers[0].check == CheckConfig()
    assert load(CheckConfig, {"interval": "500ms"}).timeout == 0.5  # never above the interval
    rs = load(RealServerConfig, {})
    assert rs == RealServerConfig(address=ipaddress.ip_address("10.0.0.11"), port=80)


@pytest.mark.parametrize(("cls", "name", "value"), [
    (GlobalConfig, "state_dir", "/srv/directord"),
    (GlobalConfig, "reconcile_interval", 7.0),
    (IpvsConfig, "on_stop", "remove"),
    (SyncDaemonConfig, "mcast_port", 9000),
    (VirtualServerConfig, "scheduler", "rr"),
    (VirtualServerConfig, "drain_timeout", 60.0),
    (RealServerConfig, "weight", 7),
    (CheckConfig, "rise", 5),
    (CheckConfig, "expect_status", ((200, 399),)),
    (VrrpInstanceConfig, "preempt", False),
    (GarpConfig, "repeat", 3),
    (VrrpScriptConfig, "weight", -7),
    (VrrpScriptConfig, "fall", 4),
    (TrackFileConfig, "weight", 3),
    (TrackFileConfig, "interval", 0.25),
    (TrackProcessConfig, "quorum", 2),
    (TrackProcessConfig, "param_match", "partial"),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_the_loader_follows_a_default_changed_in_the_model(monkeypatch: pytest.MonkeyPatch, cls: type, name: str,
                                                           value: Any) -> None:
    spec = next(spec for spec in dataclasses.fields(cls) if spec.name == name)
    monkeypatch.setattr(spec, "default", value)
    assert getattr(load(cls, {}), name) == value


# --- choices beside the Literal types --------------------------------------------------


@pytest.mark.parametrize("flag", list(SCHEDULER_FLAGS))
def test_each_scheduler_flag_goes_with_its_scheduler_only(flag: str) -> None:
    own = SCHEDULER_FLAGS[flag].scheduler
    assert load(VirtualServerConfig, {"scheduler": own, "scheduler_flags": [flag]}).scheduler_flags == (flag,)
    other = next(s for s in SCHEDULERS if s != own)
    assert (f'virtual_server "web".scheduler_flags[0]: "{flag}" applies only to the {own} scheduler'
            in errors(VirtualServerConfig, {"scheduler": other, "scheduler_flags": [flag]}))


def test_an_unknown_scheduler_flag_is_refused_with_the_flags_listed() -> None:
    assert (f'virtual_server "web".scheduler_flags[0]: "~" is not one of {", ".join(SCHEDULER_FLAGS)}'
            in errors(VirtualServerConfig, {"scheduler_flags": ["~"]}))


@pytest.mark.parametrize("option", list(CHECK_OPTION_TYPES))
def test_check_options_apply_to_their_check_types_only(option: str) -> None:
    types = CHECK_OPTION_TYPES[option]
    assert option in {spec.name for spec in dataclasses.fields(CheckConfig)} and set(types) <= set(CHECK_TYPES)
    other = next(t for t in CHECK_TYPES if t not in types)
    assert (f'virtual_server "web".check.{option}: applies only to {"/".join(types)} checks, not type "{other}"'
            in errors(CheckConfig, {"type": other, option: "x"}))


def test_port_check_types_are_check_types() -> None:
    assert set(PORT_CHECK_TYPES) <= set(CHECK_TYPES)


# --- the IPVS layer names what the config model names -------------------------------------


def test_the_ipvs_layer_takes_its_names_from_the_config_model() -> None:
    assert MemoryIpvs().schedulers == set(SCHEDULERS)
    assert set(codec.PROTO_NUM) == set(get_args(model.Protocol))
    assert set(codec.TUN_TYPE_NUM) == set(get_args(model.TunnelType))
    assert set(codec.TUN_FLAGS_NUM) == set(get_args(model.TunnelChecksum))
    assert set(get_args(model.Method)) < set(get_args(ipvs_model.Method)) == set(codec.METHOD_NUM)
    assert set(ipvs_model.SCHED_FLAG_BITS) == set(SCHEDULER_FLAGS)
    for name, flag in SCHEDULER_FLAGS.items():
        assert ipvs_model.SCHED_FLAG_BITS[name] == ipvs_model.SVC_F_SCHED1 << (flag.slot - 1)
