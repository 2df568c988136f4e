"""The admin's programs for pool changes: a real server's `notify_up`/`notify_down`, a
virtual server's `quorum_up`/`quorum_down` (keepalived's hooks of the same names).

They listen beside the mail alerts (the health bridge's verdicts, the reconcile loop's
quorum), never block the loop and never raise into it: each hook runs as a task through
`script_run` (argv, no shell, the minimal hook environment with DIRECTORD_* variables,
killed with all it started past `HOOK_TIMEOUT`). Hooks of one real server or one virtual
server run one after the other, in the order of the changes, so a DOWN script never
overtakes the UP before it; at most `MAX_QUEUED` wait per object, the oldest dropped and
counted. With `omega`, a stop runs the down hooks of what is still up, as keepalived does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Mapping

import structlog

from director.config.model import Config
from director.daemon.mail_alerts import healthy
from director.daemon.script_run import run_script
from director.reconcile.desired import RealServerState, StateKey, dest_key

log = structlog.get_logger("directord")

HOOK_TIMEOUT = 60.0  # seconds one hook may run
MAX_QUEUED = 16  # hooks waiting per real or virtual server
STOP_GRACE = 10.0  # seconds a stop waits for hooks still running

HookKey = tuple[str, ...]  # ("rs", vs name, endpoint) or ("vs", vs name)
Listener = Callable[..., None]


def both(*listeners: Listener) -> Listener:
    """One callback that tells each listener in turn; one that raises is logged and the
    others still hear (the health bridge or the reconcile loop that called goes on)."""
    def tell(*args: object) -> None:
        for listener in listeners:
            try:
                listener(*args)
            except Exception:
                log.exception("listener failed", listener=getattr(listener, "__qualname__", repr(listener)))
    return tell


class PoolHooks:
    """`config` is the running config; `states` the real-server states with drains applied."""

    def __init__(self, config: Callable[[], Config], states: Callable[[], Mapping[StateKey, RealServerState]]) -> None:
        self._config = config
        self._states = states
        self._queues: dict[HookKey, collections.deque[tuple[tuple[str, ...], dict[str, str]]]] = {}
        self._workers: dict[HookKey, asyncio.Task] = {}
        self.dropped = 0
        self.ran: collections.Counter[str] = collections.Counter()  # by outcome: ok, failed

    def on_real_server(self, key: tuple[str, str], up: bool, reason: str) -> None:
        """A real server's verdict changed (after the health bridge recorded it)."""
        vs = self._config().virtual_server(key[0])
        rs = next((r for r in vs.real_servers if r.endpoint == key[1]), None) if vs else None
        if rs is None:
            return
        command = rs.notify_up if up else rs.notify_down
        if command:
            self._queue(("rs", *key), command, {
                "DIRECTORD_VIRTUAL_SERVER": key[0], "DIRECTORD_REAL_SERVER": key[1],
                "DIRECTORD_STATE": "UP" if up else "DOWN", "DIRECTORD_REASON": reason[:200]})

    def on_quorum(self, name: str, ok: bool, first: bool) -> None:
        """A virtual server's quorum changed; on the first pass, only a missing quorum is news."""
        vs = self._config().virtual_server(name)
        if vs is None or (first and ok):
            return
        command = vs.quorum_up if ok else vs.quorum_down
        if command:
            self._queue(("vs", name), command, {"DIRECTORD_VIRTUAL_SERVER": name,
                                                "DIRECTORD_STATE": "UP" if ok else "DOWN"})

    def _queue(self, key: HookKey, command: tuple[str, ...], env: dict[str, str]) -> None:
        queue = self._queues.setdefault(key, collections.deque())
        if len(queue) >= MAX_QUEUED:
            queue.popleft()
            self.dropped += 1
            log.warning("hook dropped: too many waiting", hook=" ".join(key[1:]), waiting=MAX_QUEUED)
        queue.append((command, env))
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._drain(key))

    async def _drain(self, key: HookKey) -> None:
        queue = self._queues[key]
        try:
            while queue:
                command, env = queue.popleft()
                outcome = await run_script(command, HOOK_TIMEOUT, env=env)
                self.ran["ok" if outcome.ok else "failed"] += 1
                (log.info if outcome.ok else log.warning)(
                    "pool hook ran", hook=command[0], state=env["DIRECTORD_STATE"],
                    virtual_server=env["DIRECTORD_VIRTUAL_SERVER"],
                    real_server=env.get("DIRECTORD_REAL_SERVER"), result=outcome.reason)
        finally:
            del self._workers[key]
            if not queue:
                del self._queues[key]

    async def close(self) -> None:
        """On stop: with `omega`, the down hooks of what is still up; then wait (bounded) for
        the hooks still running."""
        self._omega()
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*late, return_exceptions=True)

    def _omega(self) -> None:
        states = self._states()
        for vs in self._config().virtual_servers:
            if not vs.omega:
                continue
            _, weight = healthy(vs, states)
            for rs in vs.real_servers:
                if states.get((vs.name, dest_key(rs)), RealServerState()).up:
                    self.on_real_server((vs.name, rs.endpoint), False, "directord stopping")
            if weight >= vs.quorum:
                self.on_quorum(vs.name, False, False)
