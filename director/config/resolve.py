"""Host names of real servers, resolved when the config is read (at start and each reload).

Names go to getaddrinfo(3) in parallel threads, each bounded by `timeout`: a resolver that
never answers costs one timeout, not one per name, and is reported as such. A thread
still waiting is left to finish on its own; nothing waits for it.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any

from director.config.model import IPAddress

RESOLVE_TIMEOUT = 3.0  # seconds for all names of one load
MAX_WORKERS = 32
# RFC 1123 host names: letters, digits and hyphens in dot-separated labels
_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                        r"[A-Za-z0-9])?)*\.?")

Resolved = dict[str, "tuple[IPAddress, ...] | str"]  # name -> its addresses, or why there are none


def is_host_name(text: str) -> bool:
    """A syntactically valid host name that is not an address literal."""
    try:
        ipaddress.ip_address(text)
        return False
    except ValueError:
        return bool(_HOST_NAME.fullmatch(text)) and not text.replace(".", "").isdigit()


def real_server_names(data: dict[str, Any]) -> set[str]:
    """The host names written as real server addresses in parsed TOML."""
    names: set[str] = set()
    services = data.get("virtual_server", [])
    for vs in services if isinstance(services, list) else []:
        servers = vs.get("real_server", []) if isinstance(vs, dict) else []
        for rs in servers if isinstance(servers, list) else []:
            address = rs.get("address") if isinstance(rs, dict) else None
            if isinstance(address, str) and is_host_name(address):
                names.add(address)
    return names


def stand_ins(names: Iterable[str]) -> Resolved:
    """A distinct reserved address of each family per name, to validate a config whose names
    resolve only on the director it is for (`directord import` writes names as they came)."""
    return {name: (ipaddress.IPv4Address(0xF0000000 + index), ipaddress.IPv6Address((0x100 << 112) + index))
            for index, name in enumerate(sorted(set(names)), 1)}


def resolve(names: Iterable[str], timeout: float = RESOLVE_TIMEOUT) -> Resolved:
    """Every name's addresses (in the resolver's order, duplicates dropped), or the reason."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(wanted)),
                                                 thread_name_prefix="resolve")
    futures = {name: pool.submit(_lookup, name) for name in wanted}
    concurrent.futures.wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    result: Resolved = {}
    for name, future in futures.items():
        if not future.done():
            result[name] = f"no answer from the resolver within {timeout:g}s"
        else:
            result[name] = future.result()
    return result


def _lookup(name: str) -> tuple[IPAddress, ...] | str:
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"does not resolve: {exc.strerror or exc}"
    except UnicodeError:
        return "is not a valid host name"
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return tuple(found) or "resolves to no address"
