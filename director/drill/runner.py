"""The drill's I/O edge: drive a lab built by `python -m scripts.lab` (processes, links, the client load)
and record what happened as core.Event / Request / Conn timelines.

One clock for every instant: CLOCK_REALTIME (`time.time()`). The kill is stamped just before the
signal; gratuitous ARPs and adverts carry the kernel's receive stamp (director.drill.wire); `ip
-tshort` prints gettimeofday; the load generator uses time.time(). Nothing is converted between
clocks, and no reader's scheduling delay enters a figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from director.drill.core import SCENARIOS, Conn, Event, Request, Run
from director.drill.labstate import load_state, save_state, start_director, state_file, sync_daemons, vip_holders
from director.drill.proc import alive, group_members, kill_group, sh, wait_for
from director.drill.switch import Switch

clock = time.time  # the drill's one clock (see the module docstring)

WARMUP = 2.0  # load before the fault
SETTLE = 3.0  # load after the expected outcome
ALIGN_TRIES = 20  # adverts to try when their reports reach the drill later than the fault phase
TAKEOVER_WAIT = 20.0  # how long a takeover may take before the run is called failed
START_WAIT = 180.0  # a director's start-up under emulation
REPO = Path(__file__).resolve().parents[2]


class LabError(Exception):
    """The lab is missing or half-built; the message is one line for people."""


def check_lab(name: str) -> dict[str, Any]:
    """The lab's state if it is complete and running, else LabError naming what is wrong."""
    path = state_file(name)
    if not path.exists():
        raise LabError(f"lab {name} is not up (no {path}): run `python -m scripts.lab up --name {name}`")
    state = load_state(name)
    if state is None:
        raise LabError(f"lab {name}: {path} is not valid JSON; run `python -m scripts.lab down --name {name}`")
    redo = f"run `python -m scripts.lab down --name {name}` then `up`"
    if not state.get("complete"):
        raise LabError(f"lab {name} is half-built (up did not finish): {redo}")
    present = set(sh(["ip", "netns", "list"], check=False).split())
    missing = [ns for ns in state["namespaces"] if ns not in present]
    if missing:
        raise LabError(f"lab {name} is half-built: namespace {missing[0]} is missing; {redo}")
    dead = [key for key, pid in state["pids"].items() if key.startswith(("httpd", "stream")) and not alive(pid)]
    if dead:
        raise LabError(f"lab {name} is half-built: {dead[0]} is not running; {redo}")
    return state


class EventLog:
    """Events as they arrive from reader threads; the drill's thread reads and waits on them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = threading.Condition()

    def add(self, event: Event) -> None:
        with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    def next_event(self, director: str, kind: str, after: float, timeout: float) -> float | None:
        """The stamp of `director`'s first `kind` event stamped after `after`, waiting up to `timeout`."""
        deadline = clock() + timeout
        with self.arrived:
            while True:
                seen = [e.t for e in self.events if e.director == director and e.kind == kind and e.t > after]
                if seen:
                    return min(seen)
                left = deadline - clock()
                if left <= 0:
                    return None
                self.arrived.wait(left)

    def between(self, start: float, end: float) -> list[Event]:
        with self.arrived:
            return [e for e in self.events if start <= e.t <= end]


class Monitor(EventLog):
    """VIP add/del from `ip -tshort monitor address` in each director namespace, and the client
    side's wire (adverts, gratuitous ARPs with kernel stamps), as Events on the drill's clock."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self.vip = state["vip"]
        self.procs: list[subprocess.Popen] = []
        self.macs = {director_mac(info["namespace"]): lb for lb, info in state["directors"].items()}
        for lb, info in state["directors"].items():
            proc = subprocess.Popen(["ip", "-n", info["namespace"], "-tshort", "-o", "monitor", "address"],
                                    stdout=subprocess.PIPE, text=True, bufsize=1, env={**os.environ, "TZ": "UTC"})
            self.procs.append(proc)
            threading.Thread(target=self._read_ip, args=(lb, proc), daemon=True).start()
        wire = subprocess.Popen(["ip", "netns", "exec", state["client"], sys.executable, "-m", "director.drill.wire",
                                 "--ifname", "eth0", "--vip", self.vip],
                                stdout=subprocess.PIPE, text=True, bufsize=1, cwd=str(REPO))
        self.procs.append(wire)
        if not _readline(wire, 120.0).startswith('{"kind": "ready"'):
            raise LabError("the wire capture in the client namespace did not start")
        threading.Thread(target=self._read_wire, args=(wire,), daemon=True).start()

    def _read_ip(self, lb: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if f" {self.vip}/" not in line:
                continue
            stamp, line = _stamp(line)
            kind = "vip_del" if line.startswith("Deleted") else "vip_add"
            self.add(Event(stamp, lb, kind))

    def _read_wire(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = wire_event(json.loads(line), self.macs)
            if event is not None:
                self.add(event)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def align(log: EventLog, director: str, phase: float | None) -> float | None:
    """Return `phase` seconds after one of `director`'s adverts as the client's wire stamped it,
    so that every round and implementation meets the fault at the same point of the advert
    cycle; a fault just after an advert is the worst case for a takeover (Master_Down_Interval
    runs from that advert). The advert's stamp, or None when there was none to align on or no
    alignment was asked for."""
    if phase is None:
        return None
    after = clock()
    for _ in range(ALIGN_TRIES):
        seen = log.next_event(director, "advert", after, timeout=5.0)
        if seen is None:
            break
        wait = seen + phase - clock()
        if wait >= 0:
            time.sleep(wait)
            return seen
        after = seen  # its report came later than the phase: take the next one
    print(f"drill:   could not align the fault {phase * 1000:.0f} ms after an advert of {director}; "
          "injecting it now", file=sys.stderr, flush=True)
    return None


def wire_event(packet: dict[str, Any], macs: dict[str, str]) -> Event | None:
    """A wire capture line as an Event: garp, advert, or resign (a priority 0 advert)."""
    lb = macs.get(packet.get("mac", ""))
    if lb is None:
        return None
    if packet["kind"] == "garp":
        return Event(packet["t"], lb, "garp")
    if packet["kind"] == "advert":
        return Event(packet["t"], lb, "resign" if packet["priority"] == 0 else "advert")
    return None


def director_mac(ns: str) -> str:
    """The MAC of a director's front interface: whose adverts and ARPs the client sees."""
    (link,) = json.loads(sh(["ip", "-j", "link", "show", "front0"], ns))
    return link["address"]


def send_stop(pid: int, sig: int) -> float:
    """`sig` to the process group led by pid: every process of the daemon, as systemd's default
    KillMode=control-group signals a service (directord's unit and Debian's keepalived unit both
    use it); returns the instant just before the signal, on the drill's clock."""
    at = clock()
    kill_group(pid, sig)
    return at


class LabDriver:
    """Start, stop, cut and inspect the lab's two directors; keeps the state file's pids true."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.monitor = Monitor(state)
        self.cut_links: set[str] = set()
        self.switch = Switch(state["switch"])
        self.ports: dict[str, list[int]] = {}

    # --- bookkeeping --------------------------------------------------------------------------

    def save(self) -> None:
        save_state(self.state)

    def ns(self, lb: str) -> str:
        return self.state["directors"][lb]["namespace"]

    def pid(self, lb: str) -> int | None:
        return self.state["pids"].get(f"director-{lb}")

    def running(self, lb: str) -> bool:
        return alive(self.pid(lb))

    def holders(self) -> set[str]:
        return set(vip_holders(self.state))

    def sync_roles(self, lb: str) -> str:
        return sync_daemons(self.state, lb)

    # --- actions ------------------------------------------------------------------------------

    def start(self, lb: str, kind: str, preempt: bool = True) -> None:
        start_director(self.state, lb, kind, preempt)
        self.monitor.add(Event(clock(), lb, "up"))

    def stop(self, lb: str, sig: int = signal.SIGTERM, wait: float = 60.0) -> float:
        """Stop a director and return the instant the signal was sent.

        Every director runs in its own session (labstate.start_director makes it so), its process group
        id being its pid, and the signal goes to the whole group: SIGKILL is a power cut (a
        daemon's children, keepalived's VRRP and checker processes or directord's VRRP process,
        die with it), SIGTERM is `systemctl stop`.
        """
        pid = self.pid(lb)
        at = clock()
        if pid is not None and alive(pid):
            at = send_stop(pid, sig)
            deadline = clock() + wait
            while alive(pid) and clock() < deadline:
                time.sleep(0.02)
            self._sweep_group(lb, pid)
        self.monitor.add(Event(at if sig == signal.SIGKILL else clock(), lb, "down"))
        self.state["pids"].pop(f"director-{lb}", None)
        self.save()
        return at

    def _sweep_group(self, lb: str, pgid: int) -> None:
        """Kill what is left of a stopped director's process group (and say so: it is a finding)."""
        left = group_members(pgid)
        if left:
            print(f"drill:   {lb}: {len(left)} process(es) of group {pgid} outlived the stop: {left}; killed",
                  file=sys.stderr, flush=True)
            kill_group(pgid)

    def scrub(self, lb: str) -> None:
        """Remove what a stopped director left (VIPs, IPVS table, sync daemons): a reboot's clean slate."""
        ns = self.ns(lb)
        for ifname in self.state["directors"][lb]["interfaces"]:
            for line in sh(["ip", "-o", "addr", "show", "dev", ifname], ns, check=False).splitlines():
                address = line.split()[3]
                if address.split("/")[0] in (self.state["vip"], "10.0.0.1"):
                    sh(["ip", "addr", "del", address, "dev", ifname], ns, check=False)
        sh(["ipvsadm", "-C"], ns, check=False)
        for role in ("master", "backup"):
            sh(["ipvsadm", "--stop-daemon", role], ns, check=False)

    def cut(self, lb: str, down: bool) -> float:
        """Pull (or plug back) every cable of a director at the switch end, the front one first;
        return the instant just before the front cable went."""
        at = self.switch.set_ports(self._switch_ports(lb), up=not down)
        self.monitor.add(Event(at, lb, "cut" if down else "uncut"))
        (self.cut_links.add if down else self.cut_links.discard)(lb)
        return at

    def _switch_ports(self, lb: str) -> list[int]:
        """The switch's ends of a director's cables, looked up once: a cut is then one netlink
        call per cable, landing where the drill aligned it."""
        if lb not in self.ports:
            indexes = []
            for peer in self.state["directors"][lb]["peers"]:
                try:
                    indexes.append(self.switch.index(peer))
                except OSError as exc:
                    raise RuntimeError(f"cutting {lb}'s links: no {peer} in {self.state['switch']}: {exc}") from None
            self.ports[lb] = indexes
        return self.ports[lb]

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        wait_for(predicate, timeout, what=what)

    # --- preconditions ------------------------------------------------------------------------

    def use(self, kind: str) -> None:
        """Run the pair with `kind` (directord or keepalived) from a clean slate if it is not already."""
        for lb in list(self.cut_links):
            self.cut(lb, False)
        if all(self.state["directors"][lb].get("kind") == kind and self.running(lb) for lb in ("lb1", "lb2")):
            return
        for lb in ("lb1", "lb2"):
            self.stop(lb)
            self.scrub(lb)
        self.start("lb1", kind)
        self.wait(lambda: self.holders() == {"lb1"}, START_WAIT, f"{kind} on lb1 to hold the VIP")
        self.start("lb2", kind)
        self.wait(lambda: "backup" in self.sync_roles("lb2"), START_WAIT, f"{kind} on lb2 to start")

    def ensure(self, pre: str, kind: str) -> None:
        for lb in list(self.cut_links):
            self.cut(lb, False)
        if not self.running("lb2"):
            self.scrub("lb2")
            self.start("lb2", kind)
            self.wait(lambda: "backup" in self.sync_roles("lb2") or self.holders() == {"lb2"}, START_WAIT,
                      f"{kind} on lb2 to start")
        lb1 = self.state["directors"]["lb1"]
        if pre == "baseline":
            if not (self.running("lb1") and lb1.get("preempt")):
                self.stop("lb1")
                self.scrub("lb1")
                self.start("lb1", kind)
            self.wait(lambda: self.holders() == {"lb1"} and "backup" in self.sync_roles("lb2"), START_WAIT,
                      "lb1 to hold the VIP and lb2 to back it up")
        else:
            self.stop("lb1")
            self.scrub("lb1")
            self.wait(lambda: self.holders() == {"lb2"}, TAKEOVER_WAIT, "lb2 to hold the VIP")
        time.sleep(0.5)

    def snapshot(self) -> list[Event]:
        """The state at a run's start, as events (the timeline needs where each bar begins)."""
        now = clock()
        held = self.holders()
        out = []
        for lb in ("lb1", "lb2"):
            out.append(Event(now, lb, "up" if self.running(lb) else "down"))
            if lb in held:
                out.append(Event(now, lb, "vip_add"))
            if lb in self.cut_links:
                out.append(Event(now, lb, "cut"))
        return out

    # --- one scenario -------------------------------------------------------------------------

    def act(self, scenario: str, kind: str, phase: float | None) -> float:
        """Inject the fault and return its instant, then wait for the outcome the scenario expects."""
        expect = SCENARIOS[scenario].expect
        if SCENARIOS[scenario].pre == "baseline":
            self._switch_ports("lb1")  # looked up now, not between the aligned instant and the cut
            align(self.monitor, "lb1", phase)
        if scenario == "sigkill":
            fault = self.stop("lb1", signal.SIGKILL)
        elif scenario == "graceful":
            fault = self.stop("lb1", signal.SIGTERM)
        elif scenario == "linkcut":
            fault = self.cut("lb1", True)
        elif scenario == "master_back_preempt":
            fault = clock()
            self.start("lb1", kind, preempt=True)
            self.wait(lambda: self.holders() == {"lb1"}, START_WAIT, "lb1 to take the VIP back")
            return fault
        else:  # master_back_nopreempt
            fault = clock()
            self.start("lb1", kind, preempt=False)
            self.wait(lambda: "backup" in self.sync_roles("lb1"), START_WAIT, "lb1 to start")
            return fault
        # the VIP add as `ip monitor` reports it: no process spawned while the failover runs
        self.monitor.next_event(expect, "vip_add", fault, TAKEOVER_WAIT)
        return fault

    def run(self, scenario: str, kind: str, rate: float, long: int, phase: float | None) -> Run:
        load = subprocess.Popen(
            ["ip", "netns", "exec", self.state["client"], sys.executable, "-m", "director.drill.load",
             "--vip", self.state["vip"], "--rate", str(rate), "--long", str(long),
             "--stream-port", str(self.state["stream_port"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(REPO))
        assert load.stdout is not None and load.stdin is not None
        try:
            ready = _readline(load, 120.0)
            if not ready.startswith("ready"):
                return Run(scenario, kind, 0, 0, 0, error=f"load generator: {ready.strip() or 'no output'}")
            start, offset = clock(), time.time() - time.monotonic()
            events = self.snapshot()
            time.sleep(WARMUP)
            self.log_sync("before the fault")
            time.sleep(1.0)  # the fault lands in steady state, not right after ipvsadm's CPU burst
            fault, error = clock(), ""
            try:
                fault = self.act(scenario, kind, phase)
            except (TimeoutError, RuntimeError) as exc:
                error = str(exc)
            time.sleep(SETTLE)
            self.log_sync("at the end")
            drift = (time.time() - time.monotonic() - offset) * 1000
            print(f"drill:   CLOCK_REALTIME moved {drift:+.1f} ms against CLOCK_MONOTONIC during the run",
                  file=sys.stderr, flush=True)
            load.stdin.close()
            result = json.loads(_readline(load, 60.0) or "{}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                load.kill()
            load.wait()
        end = result.get("end", clock())
        return Run(scenario, kind, start, fault, end, events + self.monitor.between(start, end),
                   [Request(*r) for r in result.get("requests", [])],
                   [Conn(c["opened"], c["last_byte"], c["closed"], c["reason"]) for c in result.get("long", [])],
                   error or result.get("error", ""))

    def log_sync(self, when: str) -> None:
        """How many long-lived connections each director's IPVS table knows (sync at work)."""
        port = f":{self.state['stream_port']}"
        counts = {lb: sum(1 for line in sh(["ipvsadm", "-Lnc"], self.ns(lb), check=False).splitlines()
                          if "ESTABLISHED" in line and port in line) for lb in ("lb1", "lb2")}
        print(f"drill:   established stream connections {when}: {counts}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.monitor.close()
        self.switch.close()


def _stamp(line: str) -> tuple[float, str]:
    """When `ip -tshort` (run with TZ=UTC) received the event: "[2026-11-22T06:20:14.276448] ...",
    gettimeofday, the drill's clock as it is; this reader's own time if the stamp is absent."""
    if line.startswith("[") and "]" in line:
        text, _, rest = line[1:].partition("]")
        try:
            wall = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return clock(), line
        return wall, rest.lstrip()
    return clock(), line


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""
