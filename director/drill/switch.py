"""The lab switch's ports, pulled and plugged for the link-cut scenario.

A cut must land when the drill says it does: the fault is stamped just before the first
request leaves, and the requests go from the calling thread over an rtnetlink socket opened
inside the switch's namespace, with nothing (no library thread, no spawned `ip`) in between.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time

from nlmsg import next_seq, transact
from vrrp import rtnl

CLONE_NEWNET = 0x40000000
REPLY_TIMEOUT = 5.0


def netlink_socket_in(netns: str) -> socket.socket:
    """An rtnetlink socket bound to namespace `netns` (/run/netns/NAME); a socket keeps the
    namespace it was made in, so a short-lived thread enters it, makes the socket and ends."""
    made: list[socket.socket | BaseException] = []

    def inside() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            made.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE))
        except BaseException as exc:  # handed to the caller's thread
            made.append(exc)

    thread = threading.Thread(target=inside, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


class Switch:
    """The switch namespace's ports by name and index, and their link state."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.sock = netlink_socket_in(netns)
        self.sock.settimeout(REPLY_TIMEOUT)
        self.buf = bytearray(65536)
        self.seq = 0

    def index(self, ifname: str) -> int:
        """The ifindex of a port; OSError (ENODEV) when the switch has no such port."""
        self.seq = next_seq(self.seq)
        (reply,) = transact(self.sock, self.buf, rtnl.link_request(self.seq, ifname), self.seq)
        return rtnl.decode_link(reply).index

    def set_ports(self, indexes: list[int], up: bool) -> float:
        """Take the ports down (or up) in order; returns the instant just before the first
        request left. The kernel applies each while the send runs, so its ack is waiting
        when the next goes. OSError if the kernel refused one."""
        requests = []
        for index in indexes:
            self.seq = next_seq(self.seq)
            requests.append((rtnl.link_state_request(self.seq, index, up), self.seq))
        at = time.time()
        for request, seq in requests:
            transact(self.sock, self.buf, request, seq)
        return at

    def close(self) -> None:
        self.sock.close()
