"""Tracked scripts, files and processes: run, read and counted in the daemon, their changes
sent to VRRP.

The VRRP child must never wait on a script, so the daemon runs each `[[vrrp_script]]`
that an instance tracks (every `interval`, bounded by its `timeout`,
`director.daemon.script_run`), reads each tracked `[[track_file]]` (every `interval`,
at most 127 bytes) and counts each tracked `[[track_process]]` in /proc (every `interval`,
in a thread, `director.daemon.proc_scan`). keepalived's state of a script
(`healthcheck.tracked.ScriptState`), a file's value and a process count's quorum
(`ProcessState`) are kept here; each change goes to the child at once (`send`), which
weighs it for each instance (`vrrp.trackers`). `status()` shows the same state, and each
instance's share of the priority, to `directord status` and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from director.config.model import Config, TrackFileConfig, TrackProcessConfig, VrrpScriptConfig
from director.daemon import proc_scan
from director.daemon.script_run import Account, Outcome, account, run_script
from director.daemon.vrrp_channel import SetTrackedFile, SetTrackedProcess, SetTrackedScript
from healthcheck.tracked import TRACK_FILE_READ, ProcessMatch, ProcessState, ScriptState, file_value
from vrrp import trackers as weights

log = structlog.get_logger("directord")

Send = Callable[[SetTrackedScript | SetTrackedFile | SetTrackedProcess], None]


@dataclass
class _Script:
    cfg: VrrpScriptConfig
    state: ScriptState
    who: Account | None = None
    account_error: str | None = None  # the user or group this host does not know
    task: asyncio.Task | None = None
    last: Outcome | None = None
    last_run_at: float | None = None  # wall clock
    duration: float | None = None
    since: float | None = None  # wall time of the last change of state
    runs: int = 0
    failures: int = 0
    skipped: int = 0  # turns missed while a run was still going


@dataclass
class _File:
    cfg: TrackFileConfig
    value: int | None = None
    reason: str = ""  # why the file reads as 0 (missing, unreadable), if it does for that reason
    read_at: float | None = None
    since: float | None = None
    task: asyncio.Task | None = None
    reads: int = 0


@dataclass
class _Process:
    cfg: TrackProcessConfig
    match: ProcessMatch
    state: ProcessState
    counted_at: float | None = None
    since: float | None = None
    task: asyncio.Task | None = None
    scans: int = 0


@dataclass
class Trackers:
    send: Send
    scripts: dict[str, _Script] = field(default_factory=dict)
    files: dict[str, _File] = field(default_factory=dict)
    processes: dict[str, _Process] = field(default_factory=dict)
    config: Config | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self, config: Config) -> None:
        """Start what the config's instances track (a script no instance tracks is never run)."""
        self.reload(config)

    def reload(self, config: Config) -> None:
        """Keep the trackers whose definition is unchanged (with their state), stop the others and
        start the new ones."""
        self.config = config
        scripts = {s.name: s for s in config.vrrp_scripts if s.name in _tracked(config, "script")}
        files = {f.name: f for f in config.track_files if f.name in _tracked(config, "file")}
        for name in [n for n, s in self.scripts.items() if scripts.get(n) != s.cfg]:
            _cancel(self.scripts.pop(name).task)
        for name in [n for n, f in self.files.items() if files.get(n) != f.cfg]:
            _cancel(self.files.pop(name).task)
        processes = {p.name: p for p in config.track_processes if p.name in _tracked(config, "process")}
        for name in [n for n, p in self.processes.items() if processes.get(n) != p.cfg]:
            _cancel(self.processes.pop(name).task)
        for name, cfg in processes.items():
            if name not in self.processes:
                self._start_process(cfg)
        for name, cfg in scripts.items():
            if name not in self.scripts:
                self._start_script(cfg)
        for name, cfg in files.items():
            if name not in self.files:
                self._start_file(cfg)

    async def close(self) -> None:
        everything = (*self.scripts.values(), *self.files.values(), *self.processes.values())
        tasks = [t.task for t in everything if t.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- scripts ------------------------------------------------------------------------------------

    def _start_script(self, cfg: VrrpScriptConfig) -> None:
        script = self.scripts[cfg.name] = _Script(cfg, ScriptState(cfg.rise, cfg.fall, cfg.init_fail))
        try:
            script.who = account(cfg.user, cfg.group)
        except LookupError as exc:
            script.account_error = str(exc)
            log.error("track script cannot run as its user", tracker=cfg.name, error=str(exc))
        if script.state.ok is not None:  # init_fail: failed from the start
            script.since = time.time()
            self.send(SetTrackedScript(cfg.name, script.state.ok))
        script.task = asyncio.get_running_loop().create_task(self._run_script(script), name=f"vrrp_script {cfg.name}")

    async def _run_script(self, script: _Script) -> None:
        """Run every interval from the start of the last run; a turn that comes while a run is still
        going is skipped (keepalived does the same)."""
        loop = asyncio.get_running_loop()
        interval = script.cfg.interval
        due = loop.time()
        while True:
            started = loop.time()
            if script.account_error is not None:
                result = Outcome(False, script.account_error, None)
            else:
                try:
                    result = await run_script(script.cfg.command, script.cfg.timeout or interval, script.who)
                except OSError as exc:  # no descriptor for the pidfd or the pipe, say: a failed run, not a dead task
                    result = Outcome(False, f"cannot run {script.cfg.command[0]!r}: {exc.strerror or exc}", None)
            self._record(script, result, loop.time() - started)
            due += interval
            now = loop.time()
            if due < now:
                missed = int((now - due) // interval) + 1
                script.skipped += missed
                due += missed * interval
            await asyncio.sleep(due - now)

    def _record(self, script: _Script, result: Outcome, duration: float) -> None:
        name = script.cfg.name
        if script.last is None or script.last.code != result.code:
            log.info("track script result", tracker=name, result=result.reason)  # keepalived: "now returning N"
        script.last, script.last_run_at, script.duration = result, time.time(), duration
        script.runs += 1
        script.failures += not result.ok
        changed = script.state.feed(result.ok)
        if changed is None:
            return
        script.since = time.time()
        (log.info if changed else log.warning)("track script " + ("ok" if changed else "failed"), tracker=name,
                reason=result.reason, instances=self._weights_text("script", name))
        self.send(SetTrackedScript(name, changed))

    # --- files --------------------------------------------------------------------------------------

    def _start_file(self, cfg: TrackFileConfig) -> None:
        tracked = self.files[cfg.name] = _File(cfg)
        if cfg.init_file is not None:
            init_file(cfg)
        self._read_file(tracked)  # at once: instances wait for the first value
        tracked.task = asyncio.get_running_loop().create_task(self._poll_file(tracked), name=f"track_file {cfg.name}")

    async def _poll_file(self, tracked: _File) -> None:
        while True:
            await asyncio.sleep(tracked.cfg.interval)
            self._read_file(tracked)

    def _read_file(self, tracked: _File) -> None:
        """Read the file as keepalived does: a missing or unreadable file reads as 0. Non-blocking, so
        a FIFO at the path cannot hold the daemon; bounded, so /dev/zero cannot either."""
        raw, reason = b"", ""
        try:
            fd = os.open(tracked.cfg.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
            try:
                raw = os.read(fd, TRACK_FILE_READ)
            finally:
                os.close(fd)
        except OSError as exc:
            reason = f"cannot read {tracked.cfg.path}: {(exc.strerror or str(exc)).lower()}"
        value = weights.clamp_file_value(file_value(raw))
        tracked.read_at, tracked.reads = time.time(), tracked.reads + 1
        if reason != tracked.reason and reason:
            log.warning("track file reads as 0", tracker=tracked.cfg.name, reason=reason)
        tracked.reason = reason
        if value == tracked.value:
            return
        first = tracked.value is None
        tracked.value, tracked.since = value, time.time()
        log.info("track file value" if first else "track file changed", tracker=tracked.cfg.name, value=value,
                 instances=self._weights_text("file", tracked.cfg.name))
        self.send(SetTrackedFile(tracked.cfg.name, value))

    # --- processes ----------------------------------------------------------------------------------

    def _start_process(self, cfg: TrackProcessConfig) -> None:
        match = ProcessMatch(cfg.process, cfg.args, cfg.param_match, cfg.full_command)
        tracked = self.processes[cfg.name] = _Process(
            cfg, match, ProcessState(cfg.quorum, cfg.quorum_max, cfg.fork_delay, cfg.terminate_delay))
        tracked.task = asyncio.get_running_loop().create_task(self._poll_process(tracked),
                                                              name=f"track_process {cfg.name}")

    async def _poll_process(self, tracked: _Process) -> None:
        """Count at once (instances wait for the first count), then every interval."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                [found] = await asyncio.to_thread(proc_scan.count, [tracked.match])
            except (OSError, RuntimeError) as exc:  # no thread to run it in, say: count again next turn
                log.error("track process not counted", tracker=tracked.cfg.name, error=str(exc))
                await asyncio.sleep(tracked.cfg.interval)
                continue
            tracked.counted_at, tracked.scans = time.time(), tracked.scans + 1
            before = tracked.state.ok
            changed = tracked.state.feed(found, loop.time())
            if changed is not None:
                tracked.since = time.time()
                cfg = tracked.cfg
                event = "track process counted" if before is None else \
                    f"track process quorum {'gained' if changed else 'lost'}"
                (log.info if changed else log.warning)(
                    event, tracker=cfg.name, processes=found, ok=changed,
                    quorum=f"{cfg.quorum}..{cfg.quorum_max if cfg.quorum_max is not None else ''}",
                    instances=self._weights_text("process", cfg.name))
                self.send(SetTrackedProcess(cfg.name, changed))
            await asyncio.sleep(tracked.cfg.interval)

    # --- views --------------------------------------------------------------------------------------

    def _weights_text(self, kind: weights.Kind, name: str) -> str:
        """'VI_1 -20, VI_2 fault' for a log line: what the object now does to each instance."""
        parts = []
        for instance, _weight, shift, fault in self._effects(kind, name):
            parts.append(f"{instance} {'fault' if fault else f'{shift:+d}'}")
        return ", ".join(parts)

    def _effects(self, kind: weights.Kind, name: str) -> list[tuple[str, int, int, bool]]:
        """(instance, weight, shift, fault) for each instance that tracks the object."""
        if self.config is None:
            return []
        states = weights.TrackerStates(
            scripts={n: s.state.ok for n, s in self.scripts.items() if s.state.ok is not None},
            files={n: f.value for n, f in self.files.items() if f.value is not None},
            processes={n: p.state.ok for n, p in self.processes.items() if p.state.ok is not None})
        return [(vi.name, weight, shift, fault) for vi in self.config.vrrp_instances
                for k, n, weight, shift, fault in states.effects(vi) if (k, n) == (kind, name)]

    def status(self) -> list[dict[str, Any]]:
        """One entry per tracker, with what it does to each instance that tracks it now."""
        entries: list[dict[str, Any]] = []
        for name, script in self.scripts.items():
            last = script.last
            entries.append({
                "name": name, "kind": "script", "state": script.state.state, "ok": script.state.ok,
                "since": script.since, "command": list(script.cfg.command), "interval": script.cfg.interval,
                "user": script.cfg.user, "last_result": last.reason if last else None,
                "last_run_at": script.last_run_at,
                "latency_ms": round(script.duration * 1000, 2) if script.duration is not None else None,
                "runs_total": script.runs, "failures_total": script.failures, "skipped_total": script.skipped,
                "instances": self._instances("script", name)})
        for name, tracked in self.files.items():
            entries.append({
                "name": name, "kind": "file", "state": "read" if tracked.value is not None else "unknown",
                "value": tracked.value, "since": tracked.since, "path": tracked.cfg.path,
                "reason": tracked.reason, "read_at": tracked.read_at, "reads_total": tracked.reads,
                "instances": self._instances("file", name)})
        for name, process in self.processes.items():
            cfg = process.cfg
            entries.append({
                "name": name, "kind": "process", "state": process.state.state, "ok": process.state.ok,
                "since": process.since, "process": cfg.process,
                "args": list(cfg.args) if cfg.args is not None else None,
                "count": process.state.count, "quorum": cfg.quorum, "quorum_max": cfg.quorum_max,
                "counted_at": process.counted_at, "scans_total": process.scans,
                "instances": self._instances("process", name)})
        return entries

    def _instances(self, kind: weights.Kind, name: str) -> list[dict[str, Any]]:
        return [{"instance": instance, "weight": weight, "shift": shift, "fault": fault}
                for instance, weight, shift, fault in self._effects(kind, name)]


def init_file(cfg: TrackFileConfig) -> bool:
    """keepalived's init_file: write the value to a missing file (to any regular file with
    init_overwrite) as tracking starts. Never through a symbolic link, never into a FIFO or a
    device; a failure is logged and the file then reads as it is. True when it was written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    flags |= 0 if cfg.init_overwrite else os.O_EXCL
    try:
        fd = os.open(cfg.path, flags, 0o644)
    except FileExistsError:
        return False  # there already: its value stands
    except OSError as exc:
        log.warning("track file not initialised", tracker=cfg.name, path=cfg.path,
                    error=(exc.strerror or str(exc)).lower())
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            log.warning("track file not initialised", tracker=cfg.name, path=cfg.path, error="not a regular file")
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{cfg.init_file}\n".encode())
    except OSError as exc:
        log.warning("track file not initialised", tracker=cfg.name, path=cfg.path,
                    error=(exc.strerror or str(exc)).lower())
        return False
    finally:
        os.close(fd)
    log.info("track file initialised", tracker=cfg.name, path=cfg.path, value=cfg.init_file)
    return True


def _tracked(config: Config, kind: weights.Kind) -> set[str]:
    if kind == "script":
        return {t.name for vi in config.vrrp_instances for t in vi.track_scripts}
    if kind == "process":
        return {t.name for vi in config.vrrp_instances for t in vi.track_processes}
    return {t.name for vi in config.vrrp_instances for t in vi.track_files}


def _cancel(task: asyncio.Task | None) -> None:
    if task is not None:
        with contextlib.suppress(RuntimeError):
            task.cancel()
