"""ICMP echo probe (IPv4 and IPv6): up when the target's echo reply comes back in time.

All ping checks on a loop share one socket per address family, registered in the shared
epoll (`_poll`): a check is one sendto, and the socket's reader hands each reply to the
check waiting for its sequence number (and checks the source address). The socket is
an unprivileged ICMP "ping" socket when net.ipv4.ping_group_range lets this process's
group use one, else a raw socket (root or CAP_NET_RAW), filtered in the kernel to echo
replies and the errors that can answer an echo (destination unreachable, time exceeded),
so a busy host's other ICMP traffic costs nothing here. An ICMP error quoting our echo
fails its check at once ("host unreachable (ICMP from ...)").

The wire format is `icmp_message` (sans-IO).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from typing import TYPE_CHECKING, Any

from healthcheck import _poll
from healthcheck import icmp_message as im
from healthcheck._dgram import _DONE, join_deadline, leave_deadline
from healthcheck._io import describe_error
from healthcheck._poll import Done, Poller
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

log = logging.getLogger(__name__)

_WATCH = select.EPOLLIN | select.EPOLLERR | select.EPOLLET
SOL_RAW = 255
ICMP_FILTER = 1  # linux/icmp.h: a bitmask of ICMPv4 types the raw socket drops
ICMP6_FILTER = 1  # linux/icmpv6.h: 256 bits, a set bit blocks that ICMPv6 type
MAX_READS = 4096  # replies handled per wake-up before yielding to the loop
# Replies to one tick's checks arrive together, on one socket: 1,000 of them take about 1 MB of
# receive buffer (the kernel counts each small packet's whole buffer), where the default holds ~200.
RCVBUF = 8 * 2**20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # asm-generic/socket.h; Python lacks the name


class PingSocket:
    """One family's shared ICMP socket and the checks waiting on it, keyed by sequence."""

    def __init__(self, poller: Poller, family: int) -> None:
        self.poller = poller
        self.family = family
        self.v6 = family == socket.AF_INET6
        self.sock, self.raw = _open(family)
        self.ident = (os.getpid() ^ id(self)) & 0xFFFF
        self.token = os.urandom(8)  # in every echo: replies to other pingers are not ours
        self.seq = int.from_bytes(os.urandom(2), "big")
        self.waiting: dict[int, PingConn] = {}
        self.fd = self.sock.fileno()
        # the raw v4 socket needs our checksum; the kernel writes it for v6 and ping sockets
        self.base = im.echo_sum(self.ident, self.token) if self.raw and not self.v6 else 0
        poller.epoll.register(self.fd, _WATCH)
        poller.conns[self.fd] = self

    def send(self, conn: PingConn, address: str) -> None:
        seq = self.seq
        waiting = self.waiting
        for _ in range(16):  # skip sequence numbers still in flight (65536 in flight: none free)
            seq = (seq + 1) & 0xFFFF
            if seq not in waiting:
                break
        else:
            raise OSError("too many ping checks in flight")
        self.seq = seq
        packet = im.echo(self.v6, self.ident, seq, self.token, self.base)
        self.sock.sendto(packet, (address, 0))
        waiting[seq] = conn
        conn.seq = seq

    def event(self, events: int) -> None:
        recv, waiting = self.sock.recvfrom, self.waiting
        parse = im.parse_v6 if self.v6 else im.parse_v4
        ident = None if not self.raw else self.ident  # a ping socket's kernel matches the id
        for _ in range(MAX_READS):
            try:
                data, addr = recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an error queued on the socket: not any one check's
            heard = parse(data, self.raw, ident, self.token)
            if heard is None:
                continue
            conn = waiting.get(heard.seq)
            if conn is None:
                continue
            if heard.error is None:
                if addr[0] != conn.address and _canonical(addr[0]) != conn.address:
                    continue  # a reply to this sequence from elsewhere: not our target's
                conn.finish(True, "echo reply")
            elif heard.quoted == conn.address or _canonical(heard.quoted) == conn.address:
                conn.finish(False, f"{heard.error} (ICMP from {addr[0]})")

    def fail(self, reason: str) -> None:
        log.warning("ping socket: %s", reason)

    def close(self) -> None:
        self.poller.conns.pop(self.fd, None)
        self.sock.close()


def _canonical(address: str) -> str:
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address.split("%")[0]))
    except OSError:
        return address


def _open(family: int) -> tuple[socket.socket, bool]:
    """A ping socket if allowed, else a raw one; (socket, raw)."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK, proto)
    except OSError:
        sock = _raw(family, proto)
        raw = True
    else:
        raw = False
    _grow_buffer(sock)
    return sock, raw


def _grow_buffer(sock: socket.socket) -> None:
    """Beyond net.core.rmem_max when allowed (CAP_NET_ADMIN), else up to it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)


def _raw(family: int, proto: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, proto)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, im.icmp6_filter())
        else:
            sock.setsockopt(SOL_RAW, ICMP_FILTER, im.icmp4_filter())
    except OSError:
        pass  # unfiltered: the parser drops what is not ours
    return sock


_sockets: dict[tuple[int, int], PingSocket] = {}


def shared_socket(poller: Poller, family: int) -> PingSocket:
    """The poller's socket for `family`, made on first use (those of closed loops are dropped)."""
    key = (id(poller), family)
    ps = _sockets.get(key)
    if ps is None or ps.poller is not poller:
        for old_key in [k for k, p in _sockets.items() if p.poller.loop.is_closed()]:
            _sockets.pop(old_key).close()
        ps = _sockets[key] = PingSocket(poller, family)
    return ps


class PingPlan:
    """A ping probe's target; every check sends on the shared socket."""

    __slots__ = ("address", "check", "family")

    def __init__(self, target: Target, check: CheckConfig) -> None:
        self.address = _canonical(target.address) if ":" in target.address else target.address
        self.family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
        self.check = check

    def start(self, poller: Poller, done: Done, arg: Any) -> PingConn:
        return PingConn(poller, self, done, arg)

    def close(self) -> None:
        """Nothing of its own to close: the socket is shared."""


class PingConn:
    """One echo request waiting for its reply (or the deadline)."""

    __slots__ = ("address", "arg", "done", "plan", "poller", "seq", "slot", "sock", "started", "state")

    def __init__(self, poller: Poller, plan: PingPlan, done: Done, arg: Any) -> None:
        self.poller, self.plan, self.done, self.arg = poller, plan, done, arg
        self.address = plan.address
        self.state = 0
        self.slot = None
        self.seq = -1
        self.started = poller.now
        self.sock: PingSocket | None = None
        try:
            sock = shared_socket(poller, plan.family)
            sock.send(self, plan.address)
        except OSError as exc:
            self.finish(False, describe_error(exc))
            return
        self.sock = sock
        join_deadline(poller, self, plan.check.timeout)

    def cancel(self) -> None:
        if self.state != _DONE:
            self.state = _DONE
            self._release()

    def fail(self, reason: str) -> None:
        self.finish(False, reason)

    def expire(self) -> None:
        if self.state != _DONE:
            self.finish(False, f"timeout after {float(self.plan.check.timeout)}s waiting for echo reply")

    def finish(self, ok: bool, reason: str) -> None:
        if self.state == _DONE:
            return
        self.state = _DONE
        self._release()
        latency = self.poller.now - self.started
        self.done(self.arg, ProbeResult(ok, latency if latency > 0.0 else 0.0, reason))

    def _release(self) -> None:
        sock = self.sock
        if sock is not None and sock.waiting.get(self.seq) is self:
            del sock.waiting[self.seq]
        leave_deadline(self.poller, self)


def plan(target: Target, check: CheckConfig) -> PingPlan:
    return PingPlan(target, check)


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await _poll.run(plan(target, check))
