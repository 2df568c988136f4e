"""Config checks against this host: interfaces that must exist, addresses owned.

Separate from the pure loader so a config can be validated on a machine that is
not the director (`check-config --no-host-checks`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection

from director.config.http_keys import tls_file_problems
from director.config.model import Config
from director.config.problems import Problem


def host_problems(config: Config, local_addresses: Callable[[], Collection[str]]) -> list[Problem]:
    """One problem per thing wrong on this host.

    `local_addresses` lists the host's addresses (read over rtnetlink by the caller:
    the config layer does no netlink of its own); it is asked only when an instance
    claims to own its addresses.
    """
    interfaces = {name for _, name in socket.if_nameindex()}
    return [*_missing_interfaces(config, interfaces), *_missing_devices(config, interfaces),
            *_false_owners(config, local_addresses), *_missing_sync_interface(config, interfaces),
            *tls_file_problems(config)]


def _missing_interfaces(config: Config, interfaces: set[str]) -> list[Problem]:
    return [Problem(("vrrp_instance", index, "interface"), f'no interface named "{vi.interface}" on this host')
            for index, vi in enumerate(config.vrrp_instances) if vi.interface not in interfaces]


def _missing_devices(config: Config, interfaces: set[str]) -> list[Problem]:
    """The `dev` of an address or route entry: the kernel refuses to add it on a device that is not there."""
    problems = []
    for index, vi in enumerate(config.vrrp_instances):
        devices = {option.address: option.dev for option in vi.address_options}
        lists = (("virtual_ips", vi.virtual_ips), ("excluded_ips", vi.excluded_ips))
        places = [((key, position), devices.get(ip, "")) for key, ips in lists for position, ip in enumerate(ips)]
        places += [(("virtual_routes", position), route.dev) for position, route in enumerate(vi.virtual_routes)]
        problems += [Problem(("vrrp_instance", index, *place, "dev"), f'no interface named "{dev}" on this host')
                     for place, dev in places if dev and dev not in interfaces]
    return problems


def _false_owners(config: Config, local_addresses: Callable[[], Collection[str]]) -> list[Problem]:
    """Priority 255 says "I own the addresses": true only if one of them is configured here."""
    owners = [(i, vi) for i, vi in enumerate(config.vrrp_instances) if vi.priority == 255]
    if not owners:
        return []
    addresses = local_addresses()
    return [Problem(("vrrp_instance", index, "priority"), "255 is reserved for the address owner, "
                    "and none of virtual_ips is configured on this host")
            for index, vi in owners if not any(str(vip.ip) in addresses for vip in vi.virtual_ips)]


def _missing_sync_interface(config: Config, interfaces: set[str]) -> list[Problem]:
    sync = config.ipvs.sync_daemon
    if sync is None or sync.interface in interfaces:
        return []
    return [Problem(("ipvs", "sync_daemon", "interface"), f'no interface named "{sync.interface}" on this host')]
