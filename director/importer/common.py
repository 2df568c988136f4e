"""Helpers shared by the converters: reading a source, addresses, names, masks."""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import re
import stat
from dataclasses import dataclass, field, fields
from typing import Any

MAX_SOURCE_BYTES = 8 * 1024 * 1024


def read_source(path: str) -> str:
    """The text of a config file to import: a regular file only (an include of
    /dev/zero or a FIFO would read forever) and bounded in size."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB")
    return data.decode("utf-8", errors="replace")


def endpoint(address: str, port: int) -> str:
    """ADDRESS:PORT with brackets around IPv6."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def vs_name(address: str | None, port: int | None, fwmark: int | None, protocol: str, taken: set[str]) -> str:
    """A unique virtual server name derived from what identifies it."""
    if fwmark:
        base = f"fwmark_{fwmark}"
    else:
        base = "vs_" + re.sub(r"[^0-9A-Za-z]+", "_", str(address)).strip("_") + f"_{port}"
        if protocol != "tcp":
            base += f"_{protocol}"
    name, index = base, 2
    while name in taken:
        name, index = f"{base}_{index}", index + 1
    taken.add(name)
    return name


def canonical_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def with_prefix(text: str) -> str | None:
    """An address with its prefix; a bare address gets /32 or /128. None if invalid."""
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        return None
    return f"{interface.ip}/{interface.network.prefixlen}"


def mask_to_prefix(text: str) -> int | None:
    """A netmask (255.255.255.0) or prefix length (24) as a prefix length."""
    if text.isdigit():
        return to_int(text)
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        return None


def to_int(text: str) -> int | None:
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def to_float(text: str) -> float | None:
    """A finite number: 1e400 and nan are not durations or weights."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def present(items: dict[str, Any]) -> dict[str, Any]:
    """ITEMS without the keys whose value is None: what was not set is not written."""
    return {key: value for key, value in items.items() if value is not None}


@dataclass
class Service:
    """One [[virtual_server]] table as the importers fill it; the field order is the output's."""

    name: str = ""
    address: str | None = None
    port: int | None = None
    fwmark: int | None = None
    family: str | None = None
    protocol: str | None = None
    scheduler: str | None = None
    scheduler_flags: list[str] | None = None
    method: str | None = None
    persistence_timeout: str | None = None
    persistence_netmask: int | None = None
    one_packet: bool | None = None
    quorum: int | None = None
    quorum_up: list[str] | None = None
    quorum_down: list[str] | None = None
    sorry_server: str | None = None
    on_failure: str | None = None
    check: dict[str, Any] | None = None
    real_server: list[dict[str, Any]] = field(default_factory=list)

    def take_name(self, taken: set[str]) -> None:
        """Name the service after what identifies it, unique among TAKEN."""
        protocol = self.protocol if self.protocol is not None else "tcp"
        self.name = vs_name(self.address, self.port, self.fwmark, protocol, taken)

    def output(self) -> dict[str, Any]:
        return present({f.name: getattr(self, f.name) for f in fields(self)})
