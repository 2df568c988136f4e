"""VRRP in a process of its own, so that no check, scrape or reconcile load can delay an advert.

The daemon's event loop runs thousands of health checks a second, renders /metrics
and waits on netlink; an advert that waits behind them arrives late, and a backup
that sees adverts late takes over. So `directord run` forks a small child before its
event loop starts, and the child runs only the VRRP instances (sockets, timers, VIPs,
GARP, notify hooks) on an event loop of its own.

Parent and child talk over a socketpair in typed messages (`vrrp_channel`). The child starts its instances
only when told to, so a second `directord run` that is refused at the control socket
never sends a single advert. It stops gracefully (priority 0, VIPs removed) when told
to, on SIGTERM / SIGINT, and when the parent goes away, whether by a closed socket or
by the kernel's parent-death signal; a SIGKILL of the whole process group kills both,
as it would keepalived. A child that dies on its own takes the daemon down with it,
with its reason, so systemd restarts the pair together.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import itertools
import os
import resource
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from director.daemon.vrrp_channel import (
    REPLIES,
    TO_CHILD,
    TO_PARENT,
    ChannelError,
    Done,
    Failed,
    Failover,
    FailoverReply,
    FrameReader,
    Ping,
    Reconfigure,
    Refused,
    ReleaseHold,
    Reply,
    Request,
    SetTrackedFile,
    SetTrackedProcess,
    SetTrackedScript,
    SetTrackedVirtualServer,
    Signalled,
    Snapshot,
    SnapshotReply,
    Start,
    Stop,
    ToChild,
    ToParent,
    Transitioned,
    encode,
    operation,
)

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig
    from vrrp.runtime import VrrpRuntime

log = structlog.get_logger("directord")

REQUEST_TIMEOUT = 5.0  # seconds: a child that cannot answer this fast is wedged
STOP_TIMEOUT = 5.0  # seconds for a graceful stop (notify hooks get 2 of them) before SIGKILL
PROCESS_NAME = b"directord-vrrp"  # what ps and top show for the child
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1
VRRP_NICE = -10  # the child's niceness when it may not run real-time (see _raise_priority)
RTTIME_LIMIT_US = 500_000  # CPU a real-time child may use without blocking once before it is killed

OnTransition = Callable[[str, str], None]  # (instance, new state)


class VrrpProcessError(RuntimeError):
    """The VRRP child failed, exited or stopped answering."""


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


# --- the parent's side -------------------------------------------------------------------------


class VrrpProcess:
    """The daemon's handle on its VRRP child; every method runs on the daemon's loop.

    `snapshot()` is the last state the child reported (pushed on every transition,
    refreshed by each `fresh_snapshot()`), for callers that cannot wait.
    """

    def __init__(self, pid: int, sock: socket.socket, instances: Sequence[VrrpInstanceConfig]) -> None:
        self.pid = pid
        self.instances = tuple(instances)
        self.on_transition: OnTransition | None = None
        self._sock = sock
        self._snapshot: dict[str, Any] = {"instances": {}, "unmatched_errors": {}}
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._frames: FrameReader | None = None
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._ids = itertools.count(1)
        self._failure: str | None = None
        self._signalled: str | None = None
        self._exit: str | None = None
        self._channel_open = True  # until the child's side of the channel ends
        self._started = False  # Start sent: tracker states go out as they come
        self._trackers: dict[tuple[type, str], SetTrackedScript | SetTrackedFile | SetTrackedProcess] = {}

    @classmethod
    def fork(cls, instances: Sequence[VrrpInstanceConfig], realtime_priority: int = 1) -> VrrpProcess:
        """Fork the child. Call before any event loop or thread exists in this process.
        `realtime_priority` is its SCHED_RR priority (0: normal scheduling, niced)."""
        import uvloop  # noqa: F401  (imported before the fork: its pages are shared with the child)

        import vrrp.runtime  # noqa: F401

        ours, theirs = socket.socketpair()
        parent = os.getpid()
        gc.collect()
        gc.freeze()  # the child's collector never touches the parent's objects, so pages stay shared
        pid = os.fork()
        if pid == 0:
            ours.close()
            code = 2
            try:
                code = _child_main(theirs, tuple(instances), parent, realtime_priority)
            finally:
                os._exit(code)
        theirs.close()
        # Left frozen here too: a collection would write to every object's header and copy
        # the pages the child still shares (what the fork saved), for little garbage.
        return cls(pid, ours, instances)

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot

    def problem(self) -> str | None:
        """Why the child cannot be trusted to hold its VIPs, or None while it runs."""
        if self._exit is not None:
            return f"the VRRP process exited ({self._exit})"
        if self._failure is not None:
            return f"the VRRP process failed: {self._failure}"
        if not self._channel_open:
            return "the VRRP process closed its channel"
        return None

    @property
    def dropped_frames(self) -> Counter[str]:
        """Frames from the child that were no acceptable message, by reason."""
        return self._frames.dropped if self._frames is not None else Counter()

    async def fresh_snapshot(self) -> dict[str, Any]:
        """The child's counters now; the last known ones if it does not answer in time."""
        try:
            reply = await self._request(Snapshot, expect=SnapshotReply)
            assert isinstance(reply, SnapshotReply)
            self._snapshot = reply.snapshot
        except VrrpProcessError as exc:
            log.warning("VRRP snapshot unavailable, showing the last one", error=str(exc))
        return self._snapshot

    async def failover(self, name: str) -> bool:
        reply = await self._request(Failover, name, expect=FailoverReply)
        assert isinstance(reply, FailoverReply)
        return reply.handed_over

    async def release_hold(self, name: str) -> bool:
        reply = await self._request(ReleaseHold, name, expect=FailoverReply)
        assert isinstance(reply, FailoverReply)
        return reply.handed_over

    def set_tracked_virtual_server(self, name: str, ok: bool) -> None:
        self._send(SetTrackedVirtualServer(name, ok))

    def set_tracker(self, message: SetTrackedScript | SetTrackedFile | SetTrackedProcess) -> None:
        """A tracked script's or file's state. Kept, and sent once the child is started if it
        is not yet: the child's instances wait for the trackers that can fault them."""
        self._trackers[(type(message), message.name)] = message
        if self._started:
            with contextlib.suppress(VrrpProcessError):  # a child gone takes the daemon down anyway
                self._send(message)

    async def reconfigure(self, instances: Sequence[VrrpInstanceConfig]) -> None:
        from vrrp.runtime import PRIMARY_WAIT  # loaded already: fork() imports it

        # the child may wait PRIMARY_WAIT for a new instance's address: answered within the
        # timeout, so a rejection here means the child kept its old instances
        await self._request(Reconfigure, tuple(instances), expect=Done, timeout=REQUEST_TIMEOUT + PRIMARY_WAIT)
        self.instances = tuple(instances)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.instances)

    def stop_now(self) -> None:
        """Signal the child to stop gracefully at once (its own SIGTERM handling), without
        waiting for this loop's turn to write on the channel."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def abandon(self, grace: float = 2.0) -> None:
        """Stop and reap a child whose daemon failed to start, so none is left behind."""
        self.stop_now()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)

    async def ping(self) -> bool:
        """True when the child's loop answers: the watchdog pings systemd only then. The
        first ping may come before run() has connected: that is a start, not a wedge."""
        try:
            await asyncio.wait_for(self._connected.wait(), REQUEST_TIMEOUT / 2)
        except TimeoutError:
            return False
        try:
            await self._request(Ping, expect=Done, timeout=REQUEST_TIMEOUT / 2)
        except VrrpProcessError:
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Start the instances and relay the child's messages until `stop` is set
        (then stop the child gracefully); raise if the child dies on its own."""
        reader = await self._connect()
        self._send(Start())
        self._started = True
        for message in self._trackers.values():  # what the trackers said before the start
            self._send(message)
        reading = asyncio.create_task(self._read(reader))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not stopping.done():
            stopping.cancel()
            await self._reap(STOP_TIMEOUT)
            if self._signalled:  # e.g. systemd signalled the whole cgroup: the daemon stops too
                log.info("VRRP process stopped by a signal", signal=self._signalled)
                return
            await asyncio.to_thread(self._release_vips)
            raise VrrpProcessError(f"VRRP process {self.pid} ended ({self._exit or 'still running'}): "
                                   f"{self._failure or 'no reason given'}")
        with contextlib.suppress(VrrpProcessError):  # it may already be stopping on its own
            self._send(Stop())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), STOP_TIMEOUT)
        await self._reap(0.5)
        reading.cancel()
        self._writer.close()

    def _release_vips(self) -> None:
        """A child killed outright could not remove its VIPs (nor the routes and rules it
        carries); left up, they would answer ARP beside the peer that takes over."""
        from vrrp.addresses import AddressManager
        from vrrp.carried import Carrier, items_of, kind_of
        from vrrp.fsm import OWNER_PRIORITY
        from vrrp.vmac import ALIAS as VMAC_ALIAS

        addrs = AddressManager()
        try:
            for cfg in self.instances:
                link = addrs.link(cfg.address_interface)
                if link is None or cfg.priority == OWNER_PRIORITY:
                    continue
                carrier = Carrier(addrs)
                with contextlib.suppress(Exception):  # best effort: the daemon is failing anyway
                    carrier.change(items_of(cfg), False, cfg.address_interface, link.index)
                for item in carrier.changed:
                    kind = kind_of(item)
                    log.warning(f"removed a {'VIP' if kind == 'vip' else kind} the VRRP process left behind",
                                instance=cfg.name, **{kind: str(item)})
                if cfg.use_vmac and link.alias == VMAC_ALIAS:  # one it made: no frame of the shared MAC from here
                    with contextlib.suppress(Exception):
                        addrs.delete_link(link.index)
                        log.warning("removed the VMAC the VRRP process left behind", instance=cfg.name,
                                    vmac=cfg.vmac_name)
        finally:
            addrs.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        self._frames = FrameReader(reader, TO_PARENT, side="parent")
        try:
            while (message := await self._frames.read()) is not None:
                self._dispatch(message)
        except ChannelError as exc:  # a broken channel ends the child like a crash would
            self._failure = str(exc)
        self._channel_open = False
        for future in self._pending.values():
            if not future.done():
                future.set_exception(VrrpProcessError("the VRRP process closed its channel"))

    def _dispatch(self, message: ToParent) -> None:
        if isinstance(message, Transitioned):
            self._snapshot = message.snapshot
            if self.on_transition is not None:
                self.on_transition(message.instance, message.state)
        elif isinstance(message, Failed):
            self._failure = message.reason
        elif isinstance(message, Signalled):
            self._signalled = message.signal
        else:
            future = self._pending.get(message.request_id)
            if future is not None and not future.done():
                future.set_result(message)

    async def _connect(self) -> asyncio.StreamReader:
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._connected.set()
        return reader

    async def _request(self, kind: Callable[..., Request], *args: Any, expect: type,
                       timeout: float = REQUEST_TIMEOUT) -> Reply:
        """Send `kind(request_id, *args)` and wait for its reply, which must be an `expect`."""
        request = kind(next(self._ids), *args)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request.request_id] = future
        try:
            self._send(request)
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise VrrpProcessError(f"the VRRP process did not answer {operation(request)!r} "
                                   f"within {timeout:g}s") from None
        finally:
            self._pending.pop(request.request_id, None)
        if isinstance(reply, Refused):
            raise VrrpProcessError(reply.error)
        if not isinstance(reply, expect):
            raise VrrpProcessError(f"{operation(request)}: unexpected reply {type(reply).__name__}")
        return reply

    def _send(self, message: ToChild) -> None:
        if self._writer is None or self._writer.is_closing():
            raise VrrpProcessError("the VRRP process is not running")
        try:
            frame = encode(message)
        except ChannelError as exc:
            raise VrrpProcessError(str(exc)) from None
        self._writer.write(frame)

    async def _reap(self, grace: float) -> None:
        """Collect the child's exit status; SIGKILL it if it outlives `grace` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._exit is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._exit = describe_exit(status)
                break
            if loop.time() > deadline:
                log.error("VRRP process did not stop in time, killing it", pid=self.pid)
                os.kill(self.pid, signal.SIGKILL)
                deadline = float("inf")
            await asyncio.sleep(0.02)


# --- the child's side --------------------------------------------------------------------------


def _child_main(sock: socket.socket, instances: tuple[VrrpInstanceConfig, ...], parent: int,
                realtime_priority: int) -> int:
    gc.freeze()
    _prctl(PR_SET_NAME, PROCESS_NAME)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # a parent killed alone still hands over gracefully
    if os.getppid() != parent:
        return 0  # the parent died before the signal was armed
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads arrive from the parent, already validated
    _raise_priority(realtime_priority)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # uvloop 0.17 has no uvloop.run
        return runner.run(_serve(sock, instances))


def _raise_priority(realtime_priority: int) -> None:
    """Adverts are due to the millisecond and cost microseconds, yet on a director whose
    cores are busy (checks, scrapes, other tenants) a normal process waits tens of ms
    for a CPU. Real-time round-robin runs it first; RLIMIT_RTTIME bounds the risk: a
    runaway loop that holds the CPU for RTTIME_LIMIT without blocking is killed (and the
    daemon with it, so systemd restarts both). Without the privilege: niced, and said so."""
    try:
        if realtime_priority:
            resource.setrlimit(resource.RLIMIT_RTTIME, (RTTIME_LIMIT_US, RTTIME_LIMIT_US))
            # notify hooks it runs start with normal scheduling again
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(realtime_priority))
            return
    except OSError as exc:
        log.warning("cannot give the VRRP process real-time priority, using a high nice value instead",
                    priority=realtime_priority, error=exc.strerror)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, VRRP_NICE)


def _prctl(option: int, value: int | bytes) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, ctypes.c_char_p(value) if isinstance(value, bytes) else ctypes.c_ulong(value), 0, 0, 0)


async def _serve(sock: socket.socket, instances: tuple[VrrpInstanceConfig, ...]) -> int:
    from vrrp.runtime import VrrpRuntime
    from vrrp.stop_signals import take_stop_signals

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reader, writer = await asyncio.open_connection(sock=sock)
    frames = FrameReader(reader, TO_CHILD, side="child")

    def send(message: ToParent) -> None:
        if not writer.is_closing():
            writer.write(_framed(message))

    runtime: VrrpRuntime | None = None

    def on_signal(sig: signal.Signals) -> None:
        if runtime is not None:
            runtime.resign()  # the masters' priority 0 has left already (say_farewell)
        send(Signalled(sig.name))
        stop.set()

    take_stop_signals(loop, on_signal, lambda: runtime.say_farewell() if runtime is not None else None)
    first = await frames.read()
    if not isinstance(first, Start) or stop.is_set():
        return 0  # the parent never got going (e.g. another daemon holds the control socket)

    runtime = VrrpRuntime(instances, lambda name, tr: send(Transitioned(name, tr.new.value, runtime.snapshot())))
    serving = loop.create_task(_answer(frames, send, runtime, stop))
    code = 0
    try:
        await runtime.run(stop)
    except Exception as exc:
        log.error("VRRP failed", error=str(exc))
        send(Failed(str(exc)))
        code = 2
    serving.cancel()
    with contextlib.suppress(Exception):
        await writer.drain()
    writer.close()
    return code


def _framed(message: ToParent) -> bytes:
    """The message's frame; a reply too large to send becomes a refusal, and any other
    message too large is dropped (and logged) rather than break the channel."""
    try:
        return encode(message)
    except ChannelError as exc:
        log.error("VRRP channel message not sent", message=type(message).__name__, error=str(exc))
        if isinstance(message, REPLIES):
            return encode(Refused(message.request_id, str(exc)))
        return b""


async def _answer(frames: FrameReader, send: Callable[[ToParent], None], runtime: VrrpRuntime,
                  stop: asyncio.Event) -> None:
    """Carry out the parent's requests; a closed or broken channel means the parent is
    gone (or not itself): stop gracefully."""
    try:
        while (message := await frames.read()) is not None:
            if isinstance(message, Stop):
                break
            if isinstance(message, SetTrackedVirtualServer):
                runtime.set_tracked_virtual_server(message.name, message.ok)
            elif isinstance(message, SetTrackedScript):
                runtime.set_tracker("script", message.name, message.ok)
            elif isinstance(message, SetTrackedFile):
                runtime.set_tracker("file", message.name, message.value)
            elif isinstance(message, SetTrackedProcess):
                runtime.set_tracker("process", message.name, message.ok)
            elif not isinstance(message, Start):  # a second start changes nothing
                send(await _perform(runtime, message))
    except ChannelError as exc:
        log.error("VRRP channel broken, stopping", error=str(exc))
    stop.set()


async def _perform(runtime: VrrpRuntime, request: Request) -> Reply:
    try:
        return await _HANDLERS[type(request)](runtime, request)
    except Exception as exc:
        return Refused(request.request_id, f"{operation(request)}: {exc}")


async def _snapshot(runtime: VrrpRuntime, request: Any) -> Reply:
    return SnapshotReply(request.request_id, runtime.snapshot())


async def _failover(runtime: VrrpRuntime, request: Any) -> Reply:
    return FailoverReply(request.request_id, runtime.failover(request.name))


async def _release_hold(runtime: VrrpRuntime, request: Any) -> Reply:
    return FailoverReply(request.request_id, runtime.release_hold(request.name))


async def _reconfigure(runtime: VrrpRuntime, request: Any) -> Reply:
    await runtime.reconfigure(request.instances)
    return Done(request.request_id)


async def _ping(runtime: VrrpRuntime, request: Any) -> Reply:
    return Done(request.request_id)


_HANDLERS: dict[type, Callable[[VrrpRuntime, Any], Awaitable[Reply]]] = {
    Snapshot: _snapshot, Failover: _failover, ReleaseHold: _release_hold, Reconfigure: _reconfigure,
    Ping: _ping,
}
