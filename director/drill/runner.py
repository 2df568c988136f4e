"""The drill's I/O edge: drive a lab built by scripts/lab.py (processes, links, the client load)
and record what happened as core.Event / Request / Conn timelines."""

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
from datetime import datetime
from pathlib import Path
from typing import Any

from director.drill.core import SCENARIOS, Conn, Event, Request, Run

WARMUP = 2.0  # load before the fault
SETTLE = 3.0  # load after the expected outcome
TAKEOVER_WAIT = 20.0  # how long a takeover may take before the run is called failed
START_WAIT = 180.0  # a director's start-up under emulation
REPO = Path(__file__).resolve().parents[2]


class LabError(Exception):
    """The lab is missing or half-built; the message is one line for people."""


def sh(argv: list[str], ns: str | None = None, check: bool = False, timeout: float = 60.0) -> str:
    full = ["ip", "netns", "exec", ns, *argv] if ns else argv
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(full)}: {proc.stderr.strip()}")
    return proc.stdout


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def state_file(name: str) -> Path:
    return Path(f"/run/directord-lab-{name}.json")


def check_lab(name: str) -> dict[str, Any]:
    """The lab's state if it is complete and running, else LabError naming what is wrong."""
    path = state_file(name)
    try:
        state = json.loads(path.read_text())
    except OSError:
        raise LabError(f"lab {name} is not up (no {path}): run `python scripts/lab.py up --name {name}`") from None
    except ValueError:
        raise LabError(f"lab {name}: {path} is not valid JSON; run `scripts/lab.py down --name {name}`") from None
    if not state.get("complete"):
        raise LabError(f"lab {name} is half-built (up did not finish): run `python scripts/lab.py down` then `up`")
    present = set(sh(["ip", "netns", "list"]).split())
    missing = [ns for ns in state["namespaces"] if ns not in present]
    if missing:
        raise LabError(f"lab {name} is half-built: namespace {missing[0]} is missing; "
                       "run `scripts/lab.py down` then `up`")
    dead = [key for key, pid in state["pids"].items() if key.startswith(("httpd", "stream")) and not alive(pid)]
    if dead:
        raise LabError(f"lab {name} is half-built: {dead[0]} is not running; run `scripts/lab.py down` then `up`")
    return state


class Monitor:
    """`ip monitor address` in each director namespace: VIP add/del events with their time."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.vip = state["vip"]
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.procs = []
        for lb, info in state["directors"].items():
            proc = subprocess.Popen(["ip", "-n", info["namespace"], "-tshort", "-o", "monitor", "address"],
                                    stdout=subprocess.PIPE, text=True, bufsize=1)
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(lb, proc), daemon=True).start()

    def _read(self, lb: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if f" {self.vip}/" not in line:
                continue
            stamp, line = _stamp(line)
            kind = "vip_del" if line.startswith("Deleted") else "vip_add"
            self.add(Event(stamp, lb, kind))

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def between(self, start: float, end: float) -> list[Event]:
        with self.lock:
            return [e for e in self.events if start <= e.t <= end]

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


class LabDriver:
    """Start, stop, cut and inspect the lab's two directors; keeps the state file's pids true."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.monitor = Monitor(state)
        self.cut_links: set[str] = set()

    # --- bookkeeping --------------------------------------------------------------------------

    def save(self) -> None:
        path = state_file(self.state["name"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, path)

    def ns(self, lb: str) -> str:
        return self.state["directors"][lb]["namespace"]

    def pid(self, lb: str) -> int | None:
        return self.state["pids"].get(f"director-{lb}")

    def running(self, lb: str) -> bool:
        return alive(self.pid(lb))

    def holders(self) -> set[str]:
        vip = f" {self.state['vip']}/"
        return {lb for lb in self.state["directors"] if vip in sh(["ip", "-o", "addr", "show"], self.ns(lb))}

    def sync_roles(self, lb: str) -> str:
        return sh(["ipvsadm", "-L", "--daemon"], self.ns(lb))

    # --- actions ------------------------------------------------------------------------------

    def start(self, lb: str, kind: str, preempt: bool = True) -> None:
        info = self.state["directors"][lb]
        argv = info["argv"][kind + ("" if preempt else "-nopreempt")]
        log = open(Path(self.state["run_dir"]) / lb / f"{kind}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(["ip", "netns", "exec", info["namespace"], *argv], start_new_session=True,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO))
        log.close()
        self.state["pids"][f"director-{lb}"] = proc.pid
        info["kind"], info["preempt"] = kind, preempt
        self.save()
        self.monitor.add(Event(time.monotonic(), lb, "up"))

    def stop(self, lb: str, sig: int = signal.SIGTERM, wait: float = 60.0) -> None:
        pid = self.pid(lb)
        if pid is not None and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
        self.monitor.add(Event(time.monotonic(), lb, "down"))
        self.state["pids"].pop(f"director-{lb}", None)
        self.save()

    def scrub(self, lb: str) -> None:
        """Remove what a stopped director left (VIPs, IPVS table, sync daemons): a reboot's clean slate."""
        ns = self.ns(lb)
        for ifname in self.state["directors"][lb]["interfaces"]:
            for line in sh(["ip", "-o", "addr", "show", "dev", ifname], ns).splitlines():
                address = line.split()[3]
                if address.split("/")[0] in (self.state["vip"], "10.0.0.1"):
                    sh(["ip", "addr", "del", address, "dev", ifname], ns)
        sh(["ipvsadm", "-C"], ns)
        for role in ("master", "backup"):
            sh(["ipvsadm", "--stop-daemon", role], ns)

    def cut(self, lb: str, down: bool) -> None:
        """Pull (or plug back) every cable of a director, at the switch end."""
        self.monitor.add(Event(time.monotonic(), lb, "cut" if down else "uncut"))
        peers = self.state["directors"][lb]["peers"]
        batch = "".join(f"link set {peer} {'down' if down else 'up'}\n" for peer in peers)
        proc = subprocess.run(["ip", "-n", self.state["switch"], "-batch", "-"], input=batch, text=True,
                              capture_output=True, timeout=60)  # one command: every cable at once
        if proc.returncode:
            raise RuntimeError(f"cutting {lb}'s links: {proc.stderr.strip()}")
        (self.cut_links.add if down else self.cut_links.discard)(lb)

    def wait(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

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
        now = time.monotonic()
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

    def act(self, scenario: str, kind: str) -> None:
        """Inject the fault, then wait for the outcome the scenario expects."""
        expect = SCENARIOS[scenario].expect
        if scenario == "sigkill":
            self.stop("lb1", signal.SIGKILL)
        elif scenario == "graceful":
            self.stop("lb1", signal.SIGTERM)
        elif scenario == "linkcut":
            self.cut("lb1", True)
        elif scenario == "master_back_preempt":
            self.start("lb1", kind, preempt=True)
            self.wait(lambda: self.holders() == {"lb1"}, START_WAIT, "lb1 to take the VIP back")
            return
        elif scenario == "master_back_nopreempt":
            self.start("lb1", kind, preempt=False)
            self.wait(lambda: "backup" in self.sync_roles("lb1"), START_WAIT, "lb1 to start")
            return
        with contextlib.suppress(TimeoutError):
            self.wait(lambda: expect in self.holders(), TAKEOVER_WAIT, f"{expect} to take the VIP")

    def run(self, scenario: str, kind: str, rate: float, long: int) -> Run:
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
            start = time.monotonic()
            events = self.snapshot()
            time.sleep(WARMUP)
            self.log_sync("before the fault")
            fault = time.monotonic()
            error = ""
            try:
                self.act(scenario, kind)
            except (TimeoutError, RuntimeError) as exc:
                error = str(exc)
            time.sleep(SETTLE)
            self.log_sync("at the end")
            load.stdin.close()
            result = json.loads(_readline(load, 60.0) or "{}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                load.kill()
            load.wait()
        end = result.get("end", time.monotonic())
        return Run(scenario, kind, start, fault, end, events + self.monitor.between(start, end),
                   [Request(*r) for r in result.get("requests", [])],
                   [Conn(c["opened"], c["last_byte"], c["closed"], c["reason"]) for c in result.get("long", [])],
                   error or result.get("error", ""))

    def log_sync(self, when: str) -> None:
        """How many long-lived connections each director's IPVS table knows (sync at work)."""
        port = f":{self.state['stream_port']}"
        counts = {lb: sum(1 for line in sh(["ipvsadm", "-Lnc"], self.ns(lb)).splitlines()
                          if "ESTABLISHED" in line and port in line) for lb in ("lb1", "lb2")}
        print(f"drill:   established stream connections {when}: {counts}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.monitor.close()


def _stamp(line: str) -> tuple[float, str]:
    """The kernel event's own time from `ip -tshort` ("[2026-11-22T06:20:14.276448] ..."), on the
    monotonic clock; the reader's clock if absent. The reader may run late under load; ip does not."""
    now = time.monotonic()
    if line.startswith("[") and "]" in line:
        text, _, rest = line[1:].partition("]")
        try:
            wall = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").timestamp()
        except ValueError:
            return now, line
        return min(now, now - (time.time() - wall)), rest.lstrip()
    return now, line


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""
