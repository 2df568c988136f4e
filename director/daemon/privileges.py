"""What `run` needs from the kernel before it starts anything: its capabilities.

Checked up front so a non-root start is one clear line, not an EPERM from whichever
socket happens to open first (the VRRP child's, already forked)."""

from __future__ import annotations

from director.config.model import Config

# bit numbers in the capability sets of /proc/PID/status (linux/capability.h)
CAPABILITIES = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}


def needed(config: Config) -> list[str]:
    """IPVS and VIPs are netlink administration; VRRP adverts, gratuitous ARP and ping checks
    are raw sockets (a ping check may do without, where ping_group_range lets it, but a start
    must not depend on a sysctl that can change under it)."""
    pings = any(check.type == "ping" for vs in config.virtual_servers for _, check in vs.check_places())
    return ["CAP_NET_ADMIN", *(["CAP_NET_RAW"] if config.vrrp_instances or pings else [])]


def effective(status: str) -> int:
    """The CapEff mask from the text of /proc/self/status."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def missing(config: Config, status_path: str = "/proc/self/status") -> list[str]:
    with open(status_path) as handle:
        mask = effective(handle.read())
    return [name for name in needed(config) if not mask >> CAPABILITIES[name] & 1]
