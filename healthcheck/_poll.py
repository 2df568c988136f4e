"""The hot path: plain TCP checks as callback state machines on one shared epoll.

Thousands of checks a second make per-check overhead the whole cost, so the common
checks (tcp connect, tcp send/expect, plain http) run without a task, coroutine or
future each, and without the loop's own fd watchers:

- One `select.epoll` per event loop holds the check sockets; the loop watches
  only that epoll's fd, and each wake-up handles events until the epoll is empty.
  A socket is registered once, edge-triggered for both directions, where the
  loop's add_writer/add_reader cost several syscalls per watch (uvloop makes and
  destroys a libuv poll handle each time).
- A probe keeps its socket between checks: after a verdict, connect(2) with an
  AF_UNSPEC address disconnects it (see below) and the next check connects the
  same socket again, from a new local port. An http check then costs four
  syscalls (connect, send, recv, and the disconnect) where a socket per check
  costs seven (socket, connect, epoll_ctl, send, recv, setsockopt, close); a
  connect-only check two instead of five; and the kernel allocates and frees
  no socket. The cost: one descriptor per probe, held between checks (the soft
  RLIMIT_NOFILE is raised to the hard limit, and sockets are kept only below
  half of it).
- Deadlines sit in a wheel of `DEADLINE_TICK` slots (the scheduler's tick), one
  loop timer per slot in use instead of one per check; a check's timeout fires at
  most one tick late. A slot's timer is cancelled once all its checks are done,
  so healthy targets cause no deadline wake-ups at all.
- The clock is read once per batch of events (`Poller.now`), not per check: on
  a VM without a vDSO clock every read is a syscall.
- A verdict ends the connection with a RST, as HAProxy does for its checks: the
  disconnect above, or SO_LINGER {1, 0} and close() when the socket is not kept.
  No FIN exchange and no TIME_WAIT socket on either side (10,000 connect-only
  checks a second would otherwise keep ~600,000 TIME_WAIT sockets on the
  director, far past the kernel's tcp_max_tw_buckets). The trade-off: the real
  server sees a reset instead of an orderly close, which a server that logs
  resets will log, and a reply still in flight is discarded (the verdict is
  already made); the CPU cost either way is in benchmarks/healthcheck_results.md.
  keepalived closes gracefully (SO_LINGER {1, 5}).

Each probe has a `Plan` (worked out once: address, request bytes, how to judge
the reply); each check is a `Conn` that sends the request and judges what it
reads through a sans-IO judge (`feed(bytes) -> verdict or None`, `b""` at end of
stream), the same judges the coroutine (TLS) path uses; a plan's `quick` judges
the usual whole reply in the first read without making a judge object.
`done(arg, result)` is called exactly once, from the loop, unless the check is
cancelled.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import math
import os
import resource
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from healthcheck._io import MAX_REASON, ProbeError, bind_source, describe_error, timeout_reason
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

log = logging.getLogger(__name__)

DEADLINE_TICK = 0.05  # seconds; a timeout fires at most this late
READ_CHUNK = 16384  # bytes per recv; judges bound the total
RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST
_UNSPEC = struct.pack("H14x", socket.AF_UNSPEC)  # a sockaddr of family AF_UNSPEC


def _libc_connect() -> Callable[[int, bytes, int], int] | None:
    """libc's connect(2): Python's socket.connect refuses an AF_UNSPEC address."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).connect
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_connect = _libc_connect()

_IN = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_FAIL = select.EPOLLERR | select.EPOLLHUP
_WATCH = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET

Done = Callable[[Any, ProbeResult], None]
Verdict = tuple[bool, str]


class Judge(Protocol):
    """Sans-IO reply judge: a verdict once known, None while more bytes are needed."""

    phase: str

    def feed(self, data: bytes) -> Verdict | None:
        """`data` is what arrived; b"" is the end of stream (must return a verdict)."""


# connection states
_CONNECTING, _SENDING, _READING, _DONE = range(4)


class Plan:
    """What stays the same between two checks of one probe, worked out once.

    `request` is sent after connecting; `judge()` makes the reply's judge (None:
    connected is the verdict, `ok_reason`), named `read_phase` until it exists;
    `quick(first_read)` may judge the usual whole reply without making a judge
    (None: ask the judge); `error` fails every check at once (a bad check config).

    The plan keeps its socket between checks (`spare`, still in the poller's
    epoll) and reconnects it: see `Conn._close`.
    """

    __slots__ = ("addr", "bound", "check", "error", "family", "judge", "ok_reason", "quick",
                 "read_phase", "request", "send_phase", "spare", "spare_poller")

    def __init__(self, target: Target, check: CheckConfig, *, request: bytes = b"",
                 judge: Callable[[], Judge] | None = None, ok_reason: str = "connected",
                 send_phase: str = "sending", read_phase: str = "reading",
                 quick: Callable[[bytes], Verdict | None] | None = None,
                 error: str | None = None) -> None:
        self.addr = (target.address, target.port)
        self.family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
        self.check = check
        self.bound = check.bind_address is not None or bool(check.bind_interface)
        self.request = request
        self.judge = judge
        self.quick = quick
        self.ok_reason = ok_reason
        self.send_phase = send_phase
        self.read_phase = read_phase
        self.error = error
        self.spare: socket.SocketType | None = None  # disconnected, registered in:
        self.spare_poller: Poller | None = None

    def start(self, poller: Poller, done: Done, arg: Any) -> Conn:
        """Begin one check; `done(arg, result)` follows. `poller.now` must be current."""
        return Conn(poller, self, done, arg)

    def close(self) -> None:
        """Close the kept socket (the probe is gone). A check in flight keeps its own."""
        sock, self.spare, self.spare_poller = self.spare, None, None
        if sock is not None:
            sock.close()


def _bind_or_close(sock: socket.SocketType, check: CheckConfig) -> None:
    try:
        bind_source(sock, check)
    except OSError:
        sock.close()
        raise


class Conn:
    """One check on one TCP connection, driven by epoll events and its deadline.

    Made by `Plan.start`, it connects at once. The per-check path is written with
    few Python calls (each costs about as much as a syscall's Python wrapper).
    """

    __slots__ = ("arg", "done", "fd", "judge", "kept", "plan", "poller", "request", "slot",
                 "sock", "started", "state")

    def __init__(self, poller: Poller, plan: Plan, done: Done, arg: Any) -> None:
        self.poller = poller
        self.plan = plan
        self.done = done
        self.arg = arg
        self.sock: socket.SocketType | None = None
        self.fd = -1
        self.state = _CONNECTING
        self.request: bytes | memoryview = plan.request
        self.judge: Judge | None = None
        self.slot: _Slot | None = None  # the deadline slot it waits in
        self.started = poller.now
        self.kept = False  # the socket is in the poller's epoll: it may be kept
        if plan.error is not None:
            self._finish(False, plan.error)
            return
        sock = plan.spare
        if sock is not None and plan.spare_poller is poller:
            plan.spare = None
            registered = True
        else:
            plan.close()
            try:
                sock = socket.SocketType(plan.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                if plan.bound:
                    _bind_or_close(sock, plan.check)
            except OSError as exc:
                self._finish(False, describe_error(exc))
                return
            registered = False
        self.sock, self.fd = sock, sock.fileno()
        err = sock.connect_ex(plan.addr)
        if err and err != errno.EINPROGRESS:
            self.kept = registered
            self._finish(False, errno_reason(err))
            return
        self.kept = True
        # wait for events until the deadline, in the wheel slot it falls in
        if not registered:
            poller.epoll.register(self.fd, _WATCH)
        poller.conns[self.fd] = self
        key = math.ceil((self.started + plan.check.timeout + poller.skew) / DEADLINE_TICK)
        slot = poller.slots.get(key)
        if slot is None:
            slot = poller.new_slot(key)
        slot.conns.append(self)
        slot.live += 1
        self.slot = slot

    # --- life cycle -------------------------------------------------------------------

    def cancel(self) -> None:
        """Drop the check without a verdict (the probe was removed): its socket closes."""
        if self.state != _DONE:
            self.state = _DONE
            self._close(None)

    def fail(self, reason: str) -> None:
        self._finish(False, reason)

    def expire(self) -> None:
        """The deadline passed: fail, naming what the check was doing."""
        if self.state != _DONE:
            self._finish(False, timeout_reason(self.plan.check, _Phase(self.phase())))

    def phase(self) -> str:
        if self.state == _CONNECTING:
            return "connecting"
        if self.state == _SENDING:
            return self.plan.send_phase
        return self.judge.phase if self.judge is not None else self.plan.read_phase

    # --- events -----------------------------------------------------------------------

    def event(self, events: int) -> None:
        """Readiness from the shared epoll (edge-triggered: act until EAGAIN)."""
        try:
            if self.state == _CONNECTING:
                if events & _FAIL or not events & select.EPOLLOUT:
                    err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self._finish(False, errno_reason(err))
                        return
                    if not events & select.EPOLLOUT:
                        return
                self.state = _SENDING  # connected: from here on, close with a RST
                if not self.request and self.plan.judge is None:
                    self._finish(True, self.plan.ok_reason)
                    return
                self._send()
            elif self.state == _SENDING and events & (select.EPOLLOUT | _FAIL):
                self._send()
            if self.state == _READING and events & _IN:
                self._read()
        except ProbeError as exc:
            self._finish(False, _clip(str(exc)))
        except (OSError, ValueError, UnicodeError) as exc:
            self._finish(False, describe_error(exc))

    def _send(self) -> None:
        request = self.request
        while request:
            try:
                sent = self.sock.send(request)
            except (BlockingIOError, InterruptedError):
                self.request = request
                return  # the next EPOLLOUT edge resumes
            request = memoryview(request)[sent:] if sent < len(request) else b""
        self.request = b""
        if self.plan.judge is None:
            self._finish(True, self.plan.ok_reason)
        else:
            self.state = _READING

    def _read(self) -> None:
        sock, judge = self.sock, self.judge
        while True:
            try:
                data = sock.recv(READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return  # wait for the next EPOLLIN edge
            if judge is None:  # the first read: most replies are whole and usual
                quick = self.plan.quick
                verdict = quick(data) if quick is not None and data else None
                if verdict is not None:
                    self._finish(*verdict)
                    return
                judge = self.judge = self.plan.judge()
            verdict = judge.feed(data)
            if verdict is not None:
                self._finish(*verdict)
                return

    # --- the end ----------------------------------------------------------------------

    def _finish(self, ok: bool, reason: str) -> None:
        if self.state == _DONE:
            return
        connected = self.state != _CONNECTING
        self.state = _DONE
        self._close(reset=connected)
        latency = self.poller.now - self.started
        self.done(self.arg, ProbeResult(ok, latency if latency > 0.0 else 0.0, reason))

    def _close(self, reset: bool | None = False) -> None:
        """End the connection; with `reset`, by a RST; `None` (a cancelled check):
        close the socket without keeping it.

        A verdict's socket is kept for the plan's next check: connect(2) with an
        AF_UNSPEC address disconnects it (a RST when connected, as SO_LINGER {1, 0}
        does), it stays in the epoll, and the next check connects it again from a
        new port. That is one syscall where a new socket per check costs four
        (socket, epoll_ctl, setsockopt, close) and the kernel's socket set-up and
        teardown.
        """
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self.judge = None
        poller = self.poller
        poller.conns.pop(self.fd, None)
        slot = self.slot
        if slot is not None:  # the slot's last live check takes its timer along
            self.slot = None
            slot.live -= 1
            if not slot.live and poller.slots.get(slot.key) is slot:
                del poller.slots[slot.key]
                slot.timer.cancel()
        if reset is not None and self.kept and _connect is not None:
            plan = self.plan
            if (plan.spare is None and self.fd < poller.keep_below
                    and _connect(self.fd, _UNSPEC, 16) == 0):
                plan.spare, plan.spare_poller = sock, poller
                return
        if reset:
            try:  # noqa: SIM105  (suppress() costs a context manager per check)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
            except OSError:
                pass  # already torn down by the peer: a plain close is right
        sock.close()


class _Slot:
    """Checks whose deadlines fall in one tick, and the loop timer that expires them."""

    __slots__ = ("conns", "key", "live", "timer")

    def __init__(self, key: int, timer: asyncio.TimerHandle) -> None:
        self.key = key
        self.conns: list[Conn] = []
        self.live = 0  # conns not yet done
        self.timer = timer


class _Phase:
    """The attribute `timeout_reason` reads."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def errno_reason(err: int) -> str:
    return describe_error(OSError(err, os.strerror(err)))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class Poller:
    """One epoll and one deadline wheel for every in-flight check on a loop.

    `now` is the monotonic time of the batch being handled: set when events or a
    deadline slot are handled, and by whoever starts checks (`refresh`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.now = time.monotonic()
        self.skew = loop.time() - self.now  # loop clock minus monotonic (uvloop: ms steps)
        self.epoll = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.slots: dict[int, _Slot] = {}
        self.keep_below = _fd_budget()  # plans keep their sockets only below this fd
        loop.add_reader(self.epoll.fileno(), self._ready)

    def refresh(self) -> float:
        self.now = time.monotonic()
        return self.now

    def new_slot(self, key: int) -> _Slot:
        """The deadline slot `key` (in ticks of the loop clock) and its loop timer.

        A `Conn` joins it when it starts and leaves it when it closes; the last
        live check to leave cancels the timer.
        """
        slot = self.slots[key] = _Slot(key, self.loop.call_at(key * DEADLINE_TICK,
                                                              self._expire, key))
        return slot

    def _ready(self) -> None:
        """Handle what the epoll has, until it has nothing.

        Polling again before returning picks up the events the handling itself
        caused (a disconnect's HUP on a kept socket, replies that came meanwhile)
        in this loop turn: otherwise each would cost the loop another turn.
        """
        conns, poll = self.conns, self.epoll.poll
        self.now = time.monotonic()
        events = poll(0)
        while events:
            for fd, ev in events:
                conn = conns.get(fd)
                if conn is not None:  # None: a kept socket between checks
                    try:
                        conn.event(ev)
                    except Exception as exc:  # a bug in one check must not strand the rest
                        log.exception("health check on fd %d raised", fd)
                        conn.fail(f"probe error: {describe_error(exc)}")
            events = poll(0)

    def _expire(self, key: int) -> None:
        slot = self.slots.pop(key, None)
        if slot is None:
            return
        # The loop runs timers before it polls: after a stall (a starved process),
        # replies that did arrive in time wait unread. Read them first, so only the
        # checks still without an answer time out.
        self._ready()
        for conn in slot.conns:
            if conn.state != _DONE:
                try:
                    conn.expire()
                except Exception:  # a callback bug must not stop the other deadlines
                    log.exception("health-check deadline handling raised")

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.remove_reader(self.epoll.fileno())
        self.epoll.close()


def _fd_budget() -> int:
    """Kept sockets hold one descriptor per probe: raise the soft limit to the hard
    one (systemd's default soft limit is 1024) and keep sockets only in its lower
    half, so checks in flight and the rest of the daemon always have descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return soft // 2 if soft != resource.RLIM_INFINITY else 1 << 20


_pollers: dict[asyncio.AbstractEventLoop, Poller] = {}


def poller(loop: asyncio.AbstractEventLoop) -> Poller:
    """The loop's poller, made on first use (pollers of closed loops are dropped)."""
    p = _pollers.get(loop)
    if p is None:
        for old in [lp for lp in _pollers if lp.is_closed()]:
            _pollers.pop(old).close()
        p = _pollers[loop] = Poller(loop)
    return p


async def run(plan: Plan) -> ProbeResult:
    """The coroutine face of a callback check (for `directord probe` and tests)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[ProbeResult] = loop.create_future()
    p = poller(loop)
    p.refresh()
    conn = plan.start(p, _resolve, fut)
    try:
        return await fut
    finally:
        conn.cancel()
        plan.close()


def _resolve(fut: asyncio.Future[ProbeResult], result: ProbeResult) -> None:
    if not fut.done():
        fut.set_result(result)
