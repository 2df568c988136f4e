"""Datagram checks (udp, dns) as callback state machines on the shared epoll (`_poll`).

A datagram check is one send and one recv on a connected UDP socket, so, as for tcp, the
task, coroutine and future per check would be most of its cost. A plan keeps its socket
(connected once, still in the poller's epoll) between checks; a check sends the plan's
request, waits in the poller's deadline wheel, and hands each datagram that arrives to the
plan's sans-IO judge. The kernel reports an ICMP error on a connected UDP socket as the
socket's error (port unreachable: ECONNREFUSED), which ends the check at once.

A late reply to a check that timed out may still arrive: the next check drains the socket
first (only then, so a healthy target costs no extra syscall), and judges that match
replies to requests (dns ids) ignore strays anyway.
"""

from __future__ import annotations

import math
import select
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthcheck import _poll
from healthcheck._io import bind_source, describe_error
from healthcheck._poll import DEADLINE_TICK, Done, Poller
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

_WATCH = select.EPOLLIN | select.EPOLLERR | select.EPOLLET
_DONE = 3  # _poll's state value for a finished check (its deadline wheel reads `state`)
MAX_DATAGRAM = 65535
REFUSED = "connection refused (ICMP port unreachable)"

# A judge returns a verdict, None to ignore the datagram and keep waiting, or a callable
# that continues the check another way (dns over TCP after a truncated reply).
Continue = Callable[["DgramConn"], None]


def join_deadline(poller: Poller, conn: Any, timeout: float) -> None:
    """Put `conn` in the deadline slot its timeout falls in (the wheel `_poll.Conn` uses)."""
    key = math.ceil((poller.now + timeout + poller.skew) / DEADLINE_TICK)
    slot = poller.slots.get(key)
    if slot is None:
        slot = poller.new_slot(key)
    slot.conns.append(conn)
    slot.live += 1
    conn.slot = slot


def leave_deadline(poller: Poller, conn: Any) -> None:
    slot = conn.slot
    if slot is not None:  # the slot's last live check takes its timer along
        conn.slot = None
        slot.live -= 1
        if not slot.live and poller.slots.get(slot.key) is slot:
            del poller.slots[slot.key]
            slot.timer.cancel()


class DgramPlan:
    """What stays the same between two checks of one datagram probe.

    `request(conn)` gives the bytes to send (and may set `conn.ctx`); `judge(conn, data)`
    judges one datagram. `silent_ok`: the deadline passing without an ICMP error is a pass
    (keepalived's UDP_CHECK without require_reply).
    """

    __slots__ = ("addr", "check", "dirty", "family", "judge", "poller", "read_phase", "request",
                 "silent_ok", "sock", "tcp")

    def __init__(self, target: Target, check: CheckConfig, request: Callable[[DgramConn], bytes],
                 judge: Callable[[DgramConn, bytes], Any], *, read_phase: str = "waiting for reply",
                 silent_ok: str | None = None) -> None:
        self.addr = (target.address, target.port)
        self.family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
        self.check = check
        self.request = request
        self.judge = judge
        self.read_phase = read_phase
        self.silent_ok = silent_ok
        self.sock: socket.SocketType | None = None
        self.poller: Poller | None = None
        self.dirty = False  # a check ended without reading its reply: drain before the next
        self.tcp: _poll.Plan | None = None  # dns: the TCP plan truncated replies continue on

    def start(self, poller: Poller, done: Done, arg: Any) -> DgramConn:
        return DgramConn(poller, self, done, arg)

    def socket_for(self, poller: Poller) -> socket.SocketType:
        """The plan's connected socket, in `poller`'s epoll (made on first use)."""
        sock = self.sock
        if sock is not None and self.poller is poller:
            if self.dirty:
                self.dirty = False
                _drain(sock)
            return sock
        self.close()
        sock = socket.SocketType(self.family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        try:
            if self.check.bind_address is not None or self.check.bind_interface:
                bind_source(sock, self.check)
            sock.connect(self.addr)  # UDP: no handshake, never blocks
            poller.epoll.register(sock.fileno(), _WATCH)
        except BaseException:
            sock.close()
            raise
        self.sock, self.poller = sock, poller
        return sock

    def close(self) -> None:
        sock, poller, self.sock, self.poller = self.sock, self.poller, None, None
        if self.tcp is not None:
            self.tcp.close()
        if sock is not None:
            if poller is not None:
                poller.conns.pop(sock.fileno(), None)
            sock.close()


def _drain(sock: socket.SocketType) -> None:
    """Read what a finished check left behind (late replies, a pending ICMP error)."""
    for _ in range(64):
        try:
            sock.recv(1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue  # the pending error is consumed by raising it


class DgramConn:
    """One check: send the request, judge datagrams until a verdict or the deadline."""

    __slots__ = ("arg", "ctx", "done", "fd", "plan", "poller", "slot", "started", "state", "sub")

    def __init__(self, poller: Poller, plan: DgramPlan, done: Done, arg: Any) -> None:
        self.poller, self.plan, self.done, self.arg = poller, plan, done, arg
        self.state = 0
        self.slot = None
        self.ctx: Any = None  # the judge's per-check state (the dns query)
        self.sub: Any = None  # a check this one continues as (dns over TCP)
        self.started = poller.now
        self.fd = -1
        try:
            sock = plan.socket_for(poller)
            data = plan.request(self)
            sock.send(data)
        except ConnectionRefusedError:  # an ICMP error for the previous check, still pending
            plan.dirty = True
            self._finish(False, REFUSED)
            return
        except (OSError, ValueError) as exc:
            plan.dirty = True
            self._finish(False, describe_error(exc))
            return
        self.fd = sock.fileno()
        poller.conns[self.fd] = self
        join_deadline(poller, self, plan.check.timeout)

    def cancel(self) -> None:
        if self.state != _DONE:
            self.state = _DONE
            self.plan.dirty = True
            self._release()

    def fail(self, reason: str) -> None:
        self._finish(False, reason)

    def expire(self) -> None:
        if self.state == _DONE:
            return
        self.plan.dirty = True
        if self.plan.silent_ok is not None and self.sub is None:
            self._finish(True, self.plan.silent_ok)
            return
        phase = self.sub.phase() if self.sub is not None else self.plan.read_phase
        self._finish(False, f"timeout after {float(self.plan.check.timeout)}s {phase}")

    def event(self, events: int) -> None:
        sock = self.plan.sock
        judge = self.plan.judge
        while self.state != _DONE and self.sub is None:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                self._finish(False, REFUSED)
                return
            except OSError as exc:
                self._finish(False, describe_error(exc))
                return
            verdict = judge(self, data)
            if verdict is None:
                continue
            if callable(verdict):
                self.plan.dirty = True
                verdict(self)
                return
            self._finish(*verdict)

    def continue_with(self, plan: _poll.Plan) -> None:
        """Go on as a TCP check (`_poll.Plan`) within this check's deadline."""
        self.poller.conns.pop(self.fd, None)
        self.sub = plan.start(self.poller, _sub_done, self)

    def _finish(self, ok: bool, reason: str) -> None:
        if self.state == _DONE:
            return
        self.state = _DONE
        self._release()
        if self.fd >= self.poller.keep_below:  # the descriptor budget `_poll` keeps sockets within
            self.plan.close()
        latency = self.poller.now - self.started
        self.done(self.arg, ProbeResult(ok, latency if latency > 0.0 else 0.0, reason))

    def _release(self) -> None:
        if self.fd >= 0 and self.poller.conns.get(self.fd) is self:
            del self.poller.conns[self.fd]
        sub, self.sub = self.sub, None
        if sub is not None:
            sub.cancel()
        leave_deadline(self.poller, self)


def _sub_done(conn: DgramConn, result: ProbeResult) -> None:
    if conn.state != _DONE:
        conn.sub = None
        conn._finish(result.ok, result.reason)
