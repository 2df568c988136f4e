"""VIPs, routes, rules and interface state over rtnetlink: the thin socket edge of `vrrp.rtnl`.

Every call is one blocking request on a private netlink socket, answered by the
kernel within the system call's time (microseconds), so the VRRP loop makes
them directly: a VIP is on the interface before the next line runs. The socket
timeout bounds each wait should the kernel ever not answer.

Adds are idempotent (EEXIST is success) and removes tolerate an address, route
or rule that is already gone, so a restart adopts whatever the previous run left behind.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import nlmsg
from vrrp import rtnl
from vrrp.rtnl import IFA_F_SECONDARY, IFA_F_TENTATIVE, IPAddress, IPInterface, LinkInfo

NETLINK_BUF = 65536
REQUEST_TIMEOUT = 2.0  # seconds; the kernel answers rtnetlink requests synchronously

__all__ = ["AddressManager", "LinkInfo", "LinkMonitor", "interface_addresses", "local_addresses"]


class AddressManager:
    """Owns one rtnetlink socket for address work and link queries."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.settimeout(REQUEST_TIMEOUT)
        self.buf = bytearray(NETLINK_BUF)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _transact(self, build: Callable[[int], bytes]) -> list[bytes]:
        self.seq = nlmsg.next_seq(self.seq)
        return nlmsg.transact(self.sock, self.buf, build(self.seq), self.seq)

    def link(self, ifname: str) -> LinkInfo | None:
        try:
            replies = self._transact(lambda seq: rtnl.link_request(seq, ifname))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return rtnl.decode_link(replies[0]) if replies else None

    def add_macvlan(self, ifname: str, parent: int, mac: bytes) -> None:
        """Create a private-mode macvlan, down; raises FileExistsError when the name is taken."""
        self._transact(lambda seq: rtnl.macvlan_request(seq, ifname, parent, mac))

    def set_link(self, ifindex: int, *, alias: str | None = None, addrgen_none: bool = False) -> None:
        """`rtnl.link_settings_request`: an alias, and no IPv6 address generation."""
        self._transact(lambda seq: rtnl.link_settings_request(seq, ifindex, alias=alias, addrgen_none=addrgen_none))

    def set_up(self, ifindex: int, up: bool = True) -> None:
        self._transact(lambda seq: rtnl.link_state_request(seq, ifindex, up))

    def delete_link(self, ifindex: int) -> bool:
        """True when it was there."""
        return self._change(lambda seq: rtnl.link_delete_request(seq, ifindex), frozenset({errno.ENODEV}))

    def addresses(self, family: int = 0) -> list[rtnl.AddressInfo]:
        """Every IPv4 and/or IPv6 address on this host (family 4, 6 or 0 for both)."""
        replies = self._transact(lambda seq: rtnl.address_dump_request(seq, family))
        return [a for a in map(rtnl.decode_address, replies) if a is not None]

    def primary_address(
        self, ifindex: int, family: int, exclude: set[IPAddress]
    ) -> IPAddress | None:
        """Our own address to advertise from: IPv4 primary, or IPv6 link-local."""
        for info in self.addresses(family):
            addr = info.address
            if info.index != ifindex or addr in exclude or info.flags & IFA_F_TENTATIVE:
                continue
            if family == 4 and not info.flags & IFA_F_SECONDARY:
                return addr
            if family == 6 and addr.is_link_local:
                return addr
        return None

    def add(self, ifindex: int, vip: IPInterface, **options: Any) -> bool:
        """Add a VIP with its prefix (and `rtnl.address_request`'s options: broadcast, scope,
        label, noprefixroute); True when it was not there before."""
        return self._change(lambda seq: rtnl.address_request(seq, True, ifindex, vip, **options), _EXISTS)

    def remove(self, ifindex: int, vip: IPInterface, label: str = "") -> bool:
        """Remove a VIP (only while it carries `label`, when one is given); True when it was there."""
        return self._change(lambda seq: rtnl.address_request(seq, False, ifindex, vip, label=label), _NO_ADDRESS)

    def add_route(self, route: rtnl.Route) -> bool:
        """True when the route was not there before."""
        return self._change(lambda seq: rtnl.route_request(seq, True, route), _EXISTS)

    def remove_route(self, route: rtnl.Route) -> bool:
        """Remove the route with these attributes (protocol included); True when it was there."""
        return self._change(lambda seq: rtnl.route_request(seq, False, route), _NO_ROUTE)

    def add_rule(self, rule: rtnl.Rule) -> bool:
        """True when the rule was not there before (a rule without priority is always new)."""
        return self._change(lambda seq: rtnl.rule_request(seq, True, rule), _EXISTS)

    def remove_rule(self, rule: rtnl.Rule) -> bool:
        """Remove one rule with these attributes; True when there was one."""
        return self._change(lambda seq: rtnl.rule_request(seq, False, rule), _NO_ROUTE)

    def routes(self, family: int) -> list[rtnl.Route]:
        """Every route of one family (4 or 6), every table."""
        replies = self._transact(lambda seq: rtnl.route_dump_request(seq, family))
        return [r for r in map(rtnl.decode_route, replies) if r is not None]

    def rules(self, family: int) -> list[rtnl.Rule]:
        replies = self._transact(lambda seq: rtnl.rule_dump_request(seq, family))
        return [r for r in map(rtnl.decode_rule, replies) if r is not None]

    def _change(self, build: Callable[[int], bytes], unchanged: frozenset[int]) -> bool:
        """One add or delete; False when the kernel says it had nothing to do (one of `unchanged`)."""
        try:
            self._transact(build)
        except OSError as exc:
            if exc.errno in unchanged:
                return False
            raise
        return True


_EXISTS = frozenset({errno.EEXIST})
_NO_ADDRESS = frozenset({errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT})
_NO_ROUTE = frozenset({errno.ESRCH, errno.ENOENT, errno.ENODEV})


def local_addresses() -> set[str]:
    """Every address configured on this host, as text."""
    manager = AddressManager()
    try:
        return {str(a.address) for a in manager.addresses()}
    finally:
        manager.close()


def interface_addresses() -> dict[str, list[IPInterface]]:
    """Each interface's addresses with their prefixes, by interface name (every interface,
    an empty list for one without addresses)."""
    names = {index: name for index, name in socket.if_nameindex()}
    manager = AddressManager()
    try:
        found: dict[str, list[IPInterface]] = {name: [] for name in names.values()}
        for info in manager.addresses():
            if info.index in names:
                found[names[info.index]].append(
                    ipaddress.ip_interface((info.address, info.prefixlen)))
        return found
    finally:
        manager.close()


class LinkMonitor:
    """A plain rtnetlink socket subscribed to link events, read without blocking,
    so asyncio watches the file descriptor directly."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.setblocking(False)
        self.sock.bind((0, rtnl.RTMGRP_LINK))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def read(self) -> list[tuple[str, bool]]:
        """Pending (ifname, up) events; a deleted link reports down."""
        events: list[tuple[str, bool]] = []
        while True:
            try:
                data = self.sock.recv(NETLINK_BUF)
            except BlockingIOError:
                return events
            except OSError:  # ENOBUFS: events lost; the caller re-queries
                events.append(("", False))
                return events
            events.extend(rtnl.link_events(data))
