"""How many connections a listening socket may hold: a cap, and a reserve of descriptors.

Each connection holds a file descriptor. Left unbounded, idle clients of /metrics or the
control socket used every descriptor under RLIMIT_NOFILE and the daemon's own work
(state writes, health checks, netlink) failed with EMFILE. A server admits a new
connection only below its cap and only while at least `reserve` descriptors stay free;
any other is shed at once (closed, after a one-line answer) and counted.
"""

from __future__ import annotations

import resource
import socket

RESERVE_MIN = 64  # descriptors always left to the daemon's own work
RESERVE_SHARE = 4  # ... or a quarter of RLIMIT_NOFILE, whichever is more


def reserve(soft_limit: int | None = None) -> int:
    """Descriptors connections must leave free under the soft RLIMIT_NOFILE."""
    soft = soft_limit if soft_limit is not None else nofile()
    return max(RESERVE_MIN, soft // RESERVE_SHARE)


def nofile() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class ConnectionGate:
    """Admission for one server's connections (`open`, `shed` and `limit` are exported)."""

    def __init__(self, max_connections: int, soft_limit: int | None = None) -> None:
        self.soft = soft_limit if soft_limit is not None else nofile()
        self.reserve = reserve(self.soft)
        self.limit = max(1, min(max_connections, self.soft - self.reserve))
        self.open = 0
        self.shed = 0

    def admit(self, sock: socket.socket | None) -> bool:
        """Take the connection (release() it when done) or refuse it (the caller sheds it).

        The kernel hands out the lowest free descriptor, so every number below the new
        socket's is in use: a number within `reserve` of the limit means fewer than
        `reserve` are free, whoever holds the others (checks, other clients)."""
        fd = sock.fileno() if sock is not None else -1
        if self.open >= self.limit or fd >= self.soft - self.reserve:
            self.shed += 1
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1
