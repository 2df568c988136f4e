"""Config checks against this host: interfaces that must exist, addresses owned.

Separate from the pure loader so a config can be validated on a machine that is
not the director (`check-config --no-host-checks`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection

from director.config.model import Config


def host_problems(config: Config, local_addresses: Callable[[], Collection[str]]) -> list[str]:
    """One "key: reason" line per problem found on this host.

    `local_addresses` lists the host's addresses (read over rtnetlink by the caller:
    the config layer does no netlink of its own).
    """
    interfaces = {name for _, name in socket.if_nameindex()}
    problems = []
    for index, vi in enumerate(config.vrrp_instances):
        if vi.interface not in interfaces:
            problems.append(f"vrrp_instance[{index}].interface: no interface named "
                            f'"{vi.interface}" on this host')
    owners = [(i, vi) for i, vi in enumerate(config.vrrp_instances) if vi.priority == 255]
    if owners:
        addresses = local_addresses()
        for index, vi in owners:
            if not any(str(vip.ip) in addresses for vip in vi.virtual_ips):
                problems.append(f"vrrp_instance[{index}].priority: 255 is reserved for the address owner, "
                                "and none of virtual_ips is configured on this host")
    sync = config.ipvs.sync_daemon
    if sync is not None and sync.interface not in interfaces:
        problems.append(f'ipvs.sync_daemon.interface: no interface named "{sync.interface}" on this host')
    return problems
