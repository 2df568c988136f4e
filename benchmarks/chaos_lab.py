"""The chaos soak's view of the lab: systemd's part for both directors, and what it watches.

Every instant is CLOCK_MONOTONIC (the soak steps the wall clock on purpose).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from director.drill.labstate import save_state
from director.drill.proc import group_members, in_netns, kill_group, sh

RESTART_SEC = 1.0  # systemd/directord.service: Restart=on-failure, RestartSec=1s
STOP_GRACE = 5.0  # a dead daemon's leftovers get SIGTERM, then SIGKILL after this
VRRP_COMM = "directord-vrrp"  # the VRRP child's name (director.daemon.vrrp_child.PROCESS_NAME)


class Supervisor:
    """Runs the lab's directors as the unit does: $NOTIFY_SOCKET for READY=1, Restart=on-failure
    after RestartSec, and a dead daemon's remaining processes killed (KillMode=control-group)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}  # the lab's, from the first start
        self.procs: dict[str, subprocess.Popen] = {}
        self.ready_at: dict[str, float] = {}
        self.exits: list[tuple[float, str, int]] = []
        self.sockets: dict[socket.socket, str] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def notify_path(self, lb: str) -> Path:
        return Path(self.state["run_dir"]) / lb / "notify.sock"

    def start(self, state: dict[str, Any], lb: str, kind: str = "directord") -> None:
        """Start lb's directord (scripts.lab.build calls it too, hence the signature)."""
        self.state = state
        path = self.notify_path(lb)
        if lb not in self.sockets.values():
            path.unlink(missing_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            self.sockets[sock] = lb
        info = state["directors"][lb]
        env = {"PATH": os.environ["PATH"], "NOTIFY_SOCKET": str(path), "LANG": "C.UTF-8"}
        with open(Path(state["run_dir"]) / lb / f"{kind}.log", "ab") as log:
            proc = subprocess.Popen(in_netns(info["argv"][kind], info["namespace"]), start_new_session=True,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        with self.lock:
            self.procs[lb] = proc
            self.ready_at.pop(lb, None)
        state["pids"][f"director-{lb}"] = proc.pid
        save_state(state)
        if not self.thread.is_alive():
            self.thread.start()

    def pid(self, lb: str) -> int:
        return self.procs[lb].pid

    def child_pid(self, lb: str) -> int | None:
        for pid in group_members(self.pid(lb)):
            with contextlib.suppress(OSError):
                if pid != self.pid(lb) and Path(f"/proc/{pid}/comm").read_text().strip() == VRRP_COMM:
                    return pid
        return None

    def ready(self, lb: str) -> bool:
        """Started, READY=1 reported and still running."""
        return lb in self.ready_at and self.procs[lb].poll() is None

    def wait_ready(self, lb: str, timeout: float) -> float:
        """When lb (re)started reported READY=1; TimeoutError if it did not within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if lb in self.ready_at:
                return self.ready_at[lb]
            time.sleep(0.05)
        raise TimeoutError(f"{lb} did not report READY=1 within {timeout:.0f} s")

    def wait_exit(self, lb: str, pid: int, timeout: float) -> float | None:
        """When the daemon `pid` exited, once the supervisor saw it; None if it did not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.procs[lb].pid != pid or self.procs[lb].returncode is not None:
                    return next((t for t, who, _ in reversed(self.exits) if who == lb), time.monotonic())
            time.sleep(0.02)
        return None

    def _watch(self) -> None:
        while not self.stopping.is_set():
            readable, _, _ = select.select(list(self.sockets), [], [], 0.05)
            for sock in readable:
                message = sock.recv(4096).decode(errors="replace")
                if "READY=1" in message.split("\n"):
                    self.ready_at[self.sockets[sock]] = time.monotonic()
            for lb, proc in list(self.procs.items()):
                if proc.poll() is not None and not self.stopping.is_set():
                    self._restart(lb, proc)

    def _restart(self, lb: str, proc: subprocess.Popen) -> None:
        """The main process died: stop what is left of its group, wait RestartSec, start again."""
        self.exits.append((time.monotonic(), lb, proc.returncode))
        with self.lock:
            self.ready_at.pop(lb, None)
        kill_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + max(STOP_GRACE, RESTART_SEC)
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        kill_group(proc.pid, signal.SIGKILL)
        time.sleep(max(0.0, RESTART_SEC - (time.monotonic() - self.exits[-1][0])))
        self.start(self.state, lb)

    def stop_all(self) -> None:
        """`systemctl stop` both: SIGTERM, then SIGKILL what outlives the grace."""
        self.stopping.set()
        for proc in self.procs.values():
            kill_group(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        for sock in self.sockets:
            sock.close()


class VipWatch:
    """Who holds the VIP, from `ip monitor address` in each director's namespace."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.vip = f" {state['vip']}/"
        self.changes: dict[str, list[tuple[float, bool]]] = {}
        self.procs: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        for lb, info in state["directors"].items():
            proc = subprocess.Popen(["ip", "-n", info["namespace"], "-o", "monitor", "address"],
                                    stdout=subprocess.PIPE, text=True, bufsize=1)
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(lb, proc), daemon=True).start()
            time.sleep(0.2)  # the monitor is listening before the dump below
            holds = self.vip in sh(["ip", "-o", "addr", "show"], ns=info["namespace"], check=False)
            with self.lock:
                self.changes.setdefault(lb, []).insert(0, (time.monotonic(), holds))

    def _read(self, lb: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if self.vip in line:
                with self.lock:
                    self.changes.setdefault(lb, []).append((time.monotonic(), not line.startswith("Deleted")))

    def holds(self, lb: str) -> bool:
        with self.lock:
            return bool(self.changes.get(lb)) and self.changes[lb][-1][1]

    def first_hold(self, lb: str, after: float, timeout: float) -> float | None:
        """The first instant after `after` that lb held the VIP (waiting up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                rows = self.changes.get(lb, [])
                held = [t for t, on in rows if on and t > after]
                if not held and rows and rows[-1][1] and rows[-1][0] <= after:
                    return after
            if held:
                return held[0]
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def parse_ipvsadm(text: str) -> dict[str, dict[str, str]]:
    """`ipvsadm -Ln` as {"TCP 198.51.100.10:80 rr": {"10.0.0.11:80": "Masq 1"}}."""
    table: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] in (["TCP"], ["UDP"], ["SCTP"]) and len(fields) >= 3:
            current = table.setdefault(" ".join(fields[:3]), {})
        elif fields[:1] == ["->"] and current is not None and len(fields) >= 4 and fields[1][0].isdigit():
            current[fields[1]] = f"{fields[2]} {fields[3]}"
    return table


class TableModel:
    """The IPVS table each director should have: its config in force, the real servers the soak
    has taken down (quiesced: weight 0), and drains it asked for."""

    METHOD: ClassVar[dict[str, str]] = {"nat": "Masq", "dr": "Route", "tun": "Tunnel"}

    def __init__(self, state: dict[str, Any]) -> None:
        self.configs = {lb: tomllib.loads(Path(info["argv"]["directord"][-1]).read_text())
                        for lb, info in state["directors"].items()}
        self.down: set[str] = set()  # "address:port" of real servers whose service the soak stopped
        self.drained: dict[str, set[str]] = {lb: set() for lb in state["directors"]}
        self.lock = threading.Lock()

    def expected(self, lb: str) -> dict[str, dict[str, str]]:
        with self.lock:
            table = {}
            for vs in self.configs[lb].get("virtual_server", []):
                key = f"{vs.get('protocol', 'tcp').upper()} {vs['address']}:{vs['port']} {vs.get('scheduler', 'wlc')}"
                dests = {}
                for rs in vs.get("real_server", []):
                    dest = f"{rs['address']}:{rs.get('port', vs['port'])}"
                    weight = 0 if dest in self.down or dest in self.drained[lb] else rs.get("weight", 1)
                    dests[dest] = f"{self.METHOD[vs.get('method', 'nat')]} {weight}"
                table[key] = dests
            return table


def table_difference(want: dict[str, dict[str, str]], have: dict[str, dict[str, str]]) -> str:
    """What differs, in a few words ('' when the tables are equal)."""
    out = []
    for service in sorted(set(want) | set(have)):
        if service not in have:
            out.append(f"{service} missing")
        elif service not in want:
            out.append(f"{service} not configured")
        elif want[service] != have[service]:
            wrong = sorted(d for d in set(want[service]) | set(have[service])
                           if want[service].get(d) != have[service].get(d))
            out.append(f"{service}: " + ", ".join(f"{d} {have[service].get(d, 'absent')} "
                                                  f"(want {want[service].get(d, 'absent')})" for d in wrong))
    return "; ".join(out)


def proc_usage(pid: int) -> tuple[int, int] | None:
    """(open descriptors, RSS bytes) of pid, None once it is gone."""
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return fds, rss


class Sampler:
    """Every second: each ready director's IPVS table against the model; every other: the
    descriptors and RSS of each director's two processes."""

    def __init__(self, state: dict[str, Any], supervisor: Supervisor, model: TableModel) -> None:
        self.state, self.supervisor, self.model = state, supervisor, model
        self.tables: list[tuple[float, str, bool, str]] = []
        self.usage: list[tuple[float, str, int, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        tick = 0
        while not self.stopping.wait(1.0):
            for lb, info in self.state["directors"].items():
                if self.supervisor.ready(lb):
                    self._table(lb, info["namespace"])
                if tick % 2 == 0:
                    self._usage(lb)
            tick += 1

    def _table(self, lb: str, ns: str) -> None:
        have = parse_ipvsadm(sh(["ipvsadm", "-Ln"], ns=ns, check=False))
        difference = table_difference(self.model.expected(lb), have)
        self.tables.append((time.monotonic(), lb, not difference, difference))

    def _usage(self, lb: str) -> None:
        if not self.supervisor.ready(lb):
            return
        for role, pid in (("parent", self.supervisor.pid(lb)), ("vrrp", self.supervisor.child_pid(lb))):
            usage = proc_usage(pid) if pid else None
            if usage:
                self.usage.append((time.monotonic(), f"{lb} {role} {pid}", *usage))

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(10)
