"""The runtime's raw VRRP sockets: one per (interface, family, protocol), shared by the
instances on that link, each watched by the event loop. Instances with `auth_type = "ah"`
use protocol 51 (the kernel hands a raw socket only its own protocol), the others 112."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from vrrp.ah import PROTO_AH
from vrrp.codec import PROTO_VRRP
from vrrp.sockets import VrrpSocket

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig


def protocol_of(cfg: VrrpInstanceConfig) -> int:
    """The IP protocol the instance's adverts travel in."""
    return PROTO_AH if cfg.auth_type == "ah" else PROTO_VRRP


class SocketTable:
    def __init__(self, on_readable: Callable[[VrrpSocket], None]) -> None:
        self.on_readable = on_readable
        self._socks: dict[tuple[str, int, int], VrrpSocket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, cfg: VrrpInstanceConfig, ifindex: int) -> VrrpSocket:
        """The socket of the instance's advert link (ifindex `ifindex`: its VMAC, see
        `advert_interface`), opened on first use (on the running loop). A multicast
        instance makes it join the group, also when a unicast one opened it."""
        key = (cfg.advert_interface, cfg.family, protocol_of(cfg))
        sock = self._socks.get(key)
        if sock is None:
            self._loop = asyncio.get_running_loop()
            sock = VrrpSocket(cfg.advert_interface, ifindex, cfg.family, not cfg.unicast_peers, key[2])
            self._socks[key] = sock
            self._loop.add_reader(sock.fileno(), self.on_readable, sock)
        elif not cfg.unicast_peers:
            sock.join()
        return sock

    def close_unused(self, in_use: Collection[VrrpSocket]) -> None:
        for key, sock in list(self._socks.items()):
            if sock not in in_use:
                self._close(sock)
                del self._socks[key]

    def close(self) -> None:
        for sock in self._socks.values():
            self._close(sock)

    def _close(self, sock: VrrpSocket) -> None:
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        sock.close()
