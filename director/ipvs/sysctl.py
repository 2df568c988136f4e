"""The IPVS sysctls directord manages, read and written through /proc/sys.

Only three knobs matter to a director: dropping connections to removed real
servers (expire_nodest_conn), expiring persistence templates of quiesced ones
(expire_quiescent_template) and keeping netfilter conntrack for IPVS
connections (conntrack). The root is injectable so tests use a temp folder.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_ROOT = Path("/proc/sys/net/ipv4/vs")
NAMES = ("expire_nodest_conn", "expire_quiescent_template", "conntrack")


@dataclass(frozen=True, slots=True)
class VsSysctls:
    expire_nodest_conn: int = 0
    expire_quiescent_template: int = 0
    conntrack: int = 0


class IpvsSysctl:
    """Reads and writes net.ipv4.vs.* for the three managed names."""

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        if name not in NAMES:
            raise KeyError(f"net.ipv4.vs.{name} is not managed by directord")
        return self.root / name

    def get(self, name: str) -> int:
        return int(self._path(name).read_text().strip())

    def set(self, name: str, value: int) -> None:
        """Write only on change, so a reload with equal values touches nothing."""
        path = self._path(name)
        if int(path.read_text().strip()) != int(value):
            path.write_text(f"{int(value)}\n")

    def read(self) -> VsSysctls:
        return VsSysctls(**{name: self.get(name) for name in NAMES})

    def write(self, values: VsSysctls) -> None:
        for f in fields(values):
            self.set(f.name, getattr(values, f.name))
