"""keepalived's use_vmac: an instance's VIPs on a macvlan carrying the VRRP virtual MAC.

RFC 5798 (7.3) gives each virtual router the MAC 00:00:5e:00:01:VRID (IPv4) or
00:00:5e:00:02:VRID (IPv6). With it on a macvlan
the MAC moves with the VIPs on failover, so clients keep their ARP entries. The macvlan is
private mode: a frame whose source MAC is the VMAC (a peer's advert) is handed to our VMAC
only, as keepalived relies on. `judge` (pure) decides what to do with what the kernel has;
`VmacTable` is the thin edge that creates, adopts and deletes the links and keeps the
sysctls the VMAC needs on the base, restored when its last VMAC goes (`BASE_SYSCTLS`), and
keepalived's handling of a set `all.rp_filter` (`RpFilter`). An IPv6 VMAC has none of those
IPv4 sysctls (neighbour discovery answers only for the addresses of the interface asked) but
needs a link-local address: adverts must leave from one, and the kernel sends from a
link-local address only on an interface that has it. As keepalived does, the base's own
link-local address is added to it, without DAD (the base already holds it).
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from vrrp.rtnl import LinkInfo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPv6Interface = ipaddress.IPv6Interface

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig
    from vrrp.addresses import AddressManager

log = structlog.get_logger("vrrp")
VMAC_PREFIX = {4: bytes.fromhex("00005e0001"), 6: bytes.fromhex("00005e0002")}  # by address family
# On the base while it has a VMAC. arp_ignore 1: it does not answer ARP for the VIPs (they are on
# the VMAC) with its own MAC. arp_announce 2: its ARP requests (say, for a client a VIP answers)
# name its own address, not the VIP, which would repoint the client's entry for the VIP at the base MAC.
BASE_SYSCTLS = {"arp_ignore": "1", "arp_announce": "2"}
ALIAS = "directord vmac"  # marks a macvlan directord created, so a restart after a crash still deletes it


def vmac_of(vrid: int, family: int = 4) -> bytes:
    return VMAC_PREFIX[family] + bytes([vrid])


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


@dataclass(frozen=True)
class Verdict:
    """What to do about the VMAC's name: create it, or use the link there (ours to delete or not)."""

    create: bool
    owned: bool  # delete it when the instance goes


def judge(existing: LinkInfo | None, name: str, parent: int, mac: bytes) -> Verdict:
    """Create, adopt, or refuse (ValueError) a link already called `name` that is not our VMAC:
    deleting or repurposing someone else's interface is not ours to do."""
    if existing is None:
        return Verdict(create=True, owned=True)
    if existing.kind != "macvlan" or existing.link != parent or existing.mac != mac:
        raise ValueError(f"{name} exists but is not a macvlan on the instance's interface with MAC "
                         f"{mac_text(mac)} (kind {existing.kind or 'none'!r}, MAC {mac_text(existing.mac)})")
    return Verdict(create=False, owned=existing.alias == ALIAS)


class Sysctls:
    """Reads and writes /proc/sys/net/ipv4/conf/DEV/KEY (a path under `root` in tests)."""

    def __init__(self, root: Path = Path("/proc/sys/net/ipv4/conf")) -> None:
        self.root = root

    def read(self, dev: str, key: str) -> str:
        return (self.root / dev / key).read_text().strip()

    def write(self, dev: str, key: str, value: str) -> None:
        (self.root / dev / key).write_text(value + "\n")

    def devices(self) -> list[str]:
        """Every conf directory: the interfaces, "all" and "default"."""
        return sorted(path.name for path in self.root.iterdir())


class RpFilter:
    """keepalived's rp_filter handling while any VMAC exists: the kernel applies the greater of
    `all.rp_filter` and a device's, so a set `all` would drop the adverts and replies arriving on a
    VMAC (their routes point at the base). As keepalived does, every device (and `default`) is
    raised to the greater of the two, `all` set to 0, so each keeps its protection but the VMAC
    can have 0; the old values come back when the last VMAC goes."""

    def __init__(self, sysctls: Sysctls) -> None:
        self.sysctls = sysctls
        self.saved: dict[str, str] = {}

    def lower(self) -> None:
        all_value = int(self.sysctls.read("all", "rp_filter"))
        if not all_value:
            return
        for dev in self.sysctls.devices():
            if dev == "all":
                continue
            own = self.sysctls.read(dev, "rp_filter")
            if int(own) < all_value:
                self.saved[dev] = own
                self.sysctls.write(dev, "rp_filter", str(all_value))
        self.saved["all"] = str(all_value)
        self.sysctls.write("all", "rp_filter", "0")

    def restore(self) -> None:
        saved, self.saved = self.saved, {}
        if "all" in saved:  # first: a device back at 0 must not go unprotected for a moment
            self.sysctls.write("all", "rp_filter", saved.pop("all"))
        for dev, value in saved.items():
            try:
                self.sysctls.write(dev, "rp_filter", value)
            except OSError:  # that device has gone meanwhile
                continue


@dataclass
class _Held:
    link: LinkInfo
    base: str
    owned: bool
    users: int = 1
    family: int = 4
    link_local: IPv6Interface | None = None  # the base's, added here by us (IPv6)


class VmacTable:
    """The VMACs of the running instances, by name; shared by instances naming the same one."""

    def __init__(self, addrs: AddressManager, sysctls: Sysctls | None = None) -> None:
        self.addrs = addrs
        self.sysctls = sysctls or Sysctls()
        self.held: dict[str, _Held] = {}
        self.base_users: Counter[str] = Counter()
        self.saved: dict[str, dict[str, str]] = {}  # base -> its values before its first VMAC
        self.rp_filter = RpFilter(self.sysctls)

    def open(self, cfg: VrrpInstanceConfig, base: LinkInfo, link_local: IPAddress | None = None) -> LinkInfo:
        """The instance's VMAC, up, created or adopted; OSError when it cannot be had.
        `link_local` (IPv6): the base's address the adverts leave from, added to the VMAC."""
        name = cfg.vmac_name
        held = self.held.get(name)
        if held is not None:
            held.users += 1
            return held.link
        mac = vmac_of(cfg.vrid, cfg.family)
        if cfg.family == 6:
            return self._open_v6(cfg, base, mac, link_local)
        link, verdict = self._verdict(cfg, base, mac)
        try:
            # before up: no link-local, so no DAD from the shared MAC; and our mark, if we made it
            self.addrs.set_link(link.index, alias=ALIAS if verdict.create else None, addrgen_none=True)
            self._base_arp(cfg.interface, +1)
            if not any(h.family == 4 for h in self.held.values()):
                self._lower_rp_filter()
            self.sysctls.write(name, "arp_ignore", "1")  # answer ARP only for the VIPs on it
            self.sysctls.write(name, "rp_filter", "0")  # adverts and replies arrive here, routes point at the base
            self.addrs.set_up(link.index)
        except OSError:
            if verdict.owned:
                self.addrs.delete_link(link.index)
            self._base_arp(cfg.interface, -1)
            if not any(h.family == 4 for h in self.held.values()):
                self.rp_filter.restore()
            raise
        self.held[name] = _Held(link, cfg.interface, verdict.owned)
        log.info("vmac ready", instance=cfg.name, vmac=name, mac=mac_text(mac), created=verdict.create,
                 adopted=not verdict.create)
        return link

    def _verdict(self, cfg: VrrpInstanceConfig, base: LinkInfo, mac: bytes) -> tuple[LinkInfo, Verdict]:
        name = cfg.vmac_name
        try:
            verdict = judge(self.addrs.link(name), name, base.index, mac)
        except ValueError as exc:
            raise OSError(f"vrrp_instance {cfg.name}: {exc}") from None
        if verdict.create:
            self.addrs.add_macvlan(name, base.index, mac)
        link = self.addrs.link(name)
        if link is None:
            raise OSError(f"vrrp_instance {cfg.name}: {name} vanished as it was made")
        return link, verdict

    def _open_v6(self, cfg: VrrpInstanceConfig, base: LinkInfo, mac: bytes,
                 link_local: IPAddress | None) -> LinkInfo:
        """An IPv6 VMAC: no generated addresses of its own, the base's link-local added."""
        if link_local is None or link_local.version != 6 or not link_local.is_link_local:
            raise OSError(f"vrrp_instance {cfg.name}: an IPv6 VMAC needs the link-local address of {cfg.interface}")
        link, verdict = self._verdict(cfg, base, mac)
        address = ipaddress.IPv6Interface(f"{link_local}/64")
        try:
            self.addrs.set_link(link.index, alias=ALIAS if verdict.create else None, addrgen_none=True)
            self.addrs.set_up(link.index)
            added = self.addrs.add(link.index, address)  # without DAD: the base holds it already
        except OSError:
            if verdict.owned:
                self.addrs.delete_link(link.index)
            raise
        self.held[cfg.vmac_name] = _Held(link, cfg.interface, verdict.owned, family=6,
                                         link_local=address if added and not verdict.owned else None)
        log.info("vmac ready", instance=cfg.name, vmac=cfg.vmac_name, mac=mac_text(mac), created=verdict.create,
                 adopted=not verdict.create, link_local=str(link_local))
        return link

    def release(self, name: str) -> None:
        """One instance no longer uses the VMAC `name`; the last one deletes it (if ours)."""
        held = self.held.get(name)
        if held is None:
            return
        held.users -= 1
        if held.users > 0:
            return
        del self.held[name]
        try:
            if held.owned:
                self.addrs.delete_link(held.link.index)
            elif held.link_local is not None:  # an adopted VMAC: only what we added comes off
                self.addrs.remove(held.link.index, held.link_local)
        except OSError as exc:
            log.error("vmac delete failed", vmac=name, error=os.strerror(exc.errno) if exc.errno else str(exc))
        if held.family == 4:
            self._base_arp(held.base, -1)
        if not any(h.family == 4 for h in self.held.values()):
            self.rp_filter.restore()

    def _lower_rp_filter(self) -> None:
        try:
            self.rp_filter.lower()
        except (OSError, ValueError) as exc:
            log.error("rp_filter change failed", error=str(exc))

    def close(self) -> None:
        for name in list(self.held):
            self.held[name].users = 1
            self.release(name)

    def _base_arp(self, base: str, delta: int) -> None:
        """`BASE_SYSCTLS` on the base while it has a VMAC; the old values back after the last."""
        before = self.base_users[base]
        self.base_users[base] += delta
        try:
            if before == 0 and delta > 0:
                saved = self.saved[base] = {}
                for key, value in BASE_SYSCTLS.items():
                    saved[key] = self.sysctls.read(base, key)
                    self.sysctls.write(base, key, value)
            elif self.base_users[base] <= 0:
                del self.base_users[base]
                for key, value in self.saved.pop(base, {}).items():
                    self.sysctls.write(base, key, value)
        except OSError as exc:
            log.error("arp sysctl change failed", interface=base, error=str(exc))
