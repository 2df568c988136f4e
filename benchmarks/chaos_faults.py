"""The chaos soak's faults: each injects one, waits until it has cleared and says what happened.

A fault's `start` is the instant just before it was injected, `cleared` the instant the lab was
whole again (the signal lifted, the cable back, the restarted daemon READY); CLOCK_MONOTONIC.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.chaos_lab import Supervisor, TableModel, VipWatch
from benchmarks.chaos_verdict import Fault
from director.config.toml_write import dumps
from director.daemon.control import ControlError, request
from director.drill.labstate import save_state
from director.drill.proc import kill_group
from director.drill.switch import Switch
from scripts.labkit import BUSYBOX

READY_WAIT = 180.0  # a restart under emulation
TAKEOVER_WAIT = 5.0  # how long the soak looks for the other director taking the VIP
STOP_FOR = 2.0  # SIGSTOP of the master
CUT_FOR = 2.0  # a link flap
SERVER_DOWN_FOR = 6.0  # a real server flap: long enough for fall 2 at a 2 s interval
CLOCK_STEP = 3600.0  # a wall-clock step, forward then back
CLOCK_HELD = 3.0
STORM = {"clients": 64, "seconds": 3}
INLINE_KEYS = frozenset({"sync_daemon", "garp"})  # as scripts.lab writes the configs
BROKEN = {  # a reload that must be refused: how each breaks the config
    "syntax": lambda text: text + "\n[[virtual_server\n",
    "missing_interface": lambda text: text.replace('"front0"', '"eth9"', 1),
    "bad_scheduler": lambda text: text.replace('scheduler = "rr"', 'scheduler = "nope"', 1),
}


class Injector:
    """Knows the lab and the soak's watchers; `inject(kind)` runs one fault to its end."""

    KINDS = ("kill_vrrp_child", "kill_parent", "kill_group", "sigstop", "reload_broken", "reload_changed",
             "server_flap", "link_flap", "spoofed_advert", "scrape_storm", "state_dir_full", "clock_step")

    def __init__(self, state: dict[str, Any], supervisor: Supervisor, vips: VipWatch, model: TableModel,
                 client: subprocess.Popen, rng: random.Random) -> None:
        self.state, self.supervisor, self.vips, self.model, self.client = state, supervisor, vips, model, client
        self.rng = rng
        self.switch = Switch(state["switch"])
        self.lbs = sorted(state["directors"])
        self.broken = 0  # reloads with a broken config so far

    # --- helpers ----------------------------------------------------------------------------

    def master(self) -> str:
        """The director that owns the VIP (the first one when none or both do)."""
        holders = [lb for lb in self.lbs if self.vips.holds(lb) and self.supervisor.ready(lb)]
        return holders[0] if len(holders) == 1 else self.lbs[0]

    def other(self, lb: str) -> str:
        return next(x for x in self.lbs if x != lb)

    def pick(self, master_share: float = 0.75) -> str:
        """Mostly the master (the faults that matter), sometimes the backup."""
        master = self.master()
        return master if self.rng.random() < master_share else self.other(master)

    def config_path(self, lb: str) -> Path:
        return Path(self.state["directors"][lb]["argv"]["directord"][-1])

    def socket(self, lb: str) -> str:
        return self.model.configs[lb]["global"]["control_socket"]

    def state_dir(self, lb: str) -> Path:
        return Path(self.model.configs[lb]["global"]["state_dir"])

    def ask_client(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(json.dumps(command) + "\n")
        self.client.stdin.flush()
        return json.loads(self.client.stdout.readline() or '{"error": "the client agent is gone"}')

    def takeover(self, fault: Fault, by: str) -> None:
        """Note when `by` took the VIP after the fault began (a problem if it did not)."""
        at = self.vips.first_hold(by, fault.start, TAKEOVER_WAIT)
        if at is None:
            fault.problems.append(f"{by} did not take the VIP within {TAKEOVER_WAIT:.0f} s")
        else:
            fault.outcome += f"VIP on {by} after {(at - fault.start) * 1000:.0f} ms; "

    def restarted(self, fault: Fault, lb: str, pid: int) -> None:
        """Wait for the daemon `pid` to end and the supervisor's restart to report READY."""
        exited = self.supervisor.wait_exit(lb, pid, 30.0)
        if exited is None:
            fault.problems.append(f"{lb} (pid {pid}) did not exit")
            kill_group(pid)
            exited = time.monotonic()
        try:
            ready = self.supervisor.wait_ready(lb, READY_WAIT)
        except TimeoutError as exc:
            fault.problems.append(str(exc))
            ready = time.monotonic()
        fault.cleared = ready
        fault.outcome += f"exited after {(exited - fault.start) * 1000:.0f} ms, READY again after " \
                         f"{ready - fault.start:.1f} s"

    # --- the faults -------------------------------------------------------------------------

    def inject(self, kind: str) -> Fault:
        target = {"server_flap": "", "spoofed_advert": "", "clock_step": ""}.get(kind)
        if target is None:
            target = self.pick() if kind.startswith(("kill", "sigstop", "link")) else self.rng.choice(self.lbs)
        fault = Fault(kind, target, "master" if target == self.master() else "backup" if target else "",
                      time.monotonic())
        fault.hard = fault.role == "master" and kind.startswith(("kill", "sigstop", "link"))
        getattr(self, kind)(fault)
        fault.cleared = fault.cleared or time.monotonic()
        return fault

    def _kill(self, fault: Fault, pid: int | None, group: bool = False) -> None:
        lb, parent = fault.target, self.supervisor.pid(fault.target)
        if pid is None:
            fault.problems.append(f"{lb} has no VRRP child to kill")
            return
        fault.start = time.monotonic()
        (kill_group if group else os.kill)(pid, signal.SIGKILL)
        if fault.role == "master":
            self.takeover(fault, self.other(lb))
        self.restarted(fault, lb, parent)

    def kill_vrrp_child(self, fault: Fault) -> None:
        self._kill(fault, self.supervisor.child_pid(fault.target))

    def kill_parent(self, fault: Fault) -> None:
        self._kill(fault, self.supervisor.pid(fault.target))

    def kill_group(self, fault: Fault) -> None:
        self._kill(fault, self.supervisor.pid(fault.target), group=True)

    def sigstop(self, fault: Fault) -> None:
        pid = self.supervisor.pid(fault.target)
        fault.start = time.monotonic()
        kill_group(pid, signal.SIGSTOP)
        if fault.role == "master":
            self.takeover(fault, self.other(fault.target))
        time.sleep(max(0.0, fault.start + STOP_FOR - time.monotonic()))
        fault.cleared = time.monotonic()
        kill_group(pid, signal.SIGCONT)
        fault.outcome += f"stopped {STOP_FOR:.0f} s"

    def link_flap(self, fault: Fault) -> None:
        ports = [self.switch.index(peer) for peer in self.state["directors"][fault.target]["peers"]]
        fault.start = time.monotonic()
        self.switch.set_ports(ports, up=False)
        if fault.role == "master":
            self.takeover(fault, self.other(fault.target))
        time.sleep(max(0.0, fault.start + CUT_FOR - time.monotonic()))
        fault.cleared = time.monotonic()
        self.switch.set_ports(ports, up=True)
        fault.outcome += f"links down {CUT_FOR:.0f} s"

    def reload_broken(self, fault: Fault) -> None:
        lb, how = fault.target, sorted(BROKEN)[self.broken % len(BROKEN)]  # each way in turn
        self.broken += 1
        path = self.config_path(lb)
        good = path.read_text()
        path.write_text(BROKEN[how](good))
        try:
            request(self.socket(lb), "reload")
            fault.problems.append(f"a config with {how} was accepted")
        except ControlError as exc:
            fault.outcome = f"{how}: refused ({one_line(exc, 90)})"
        finally:
            path.write_text(good)

    def reload_changed(self, fault: Fault) -> None:
        """rs3's weight in `web` between 1 and 3, so the table must follow the reload."""
        lb = fault.target
        path = self.config_path(lb)
        config = tomllib.loads(path.read_text())
        rs3 = config["virtual_server"][0]["real_server"][2]
        rs3["weight"] = 3 if rs3.get("weight", 1) == 1 else 1
        old = path.read_text()
        path.write_text(dumps(config, inline_keys=INLINE_KEYS))
        try:
            request(self.socket(lb), "reload")
        except ControlError as exc:
            path.write_text(old)
            fault.problems.append(f"a valid change was refused: {exc}")
            return
        with self.model.lock:
            self.model.configs[lb] = config
        fault.outcome = f"rs3 weight {rs3['weight']} in web: reloaded"

    def server_flap(self, fault: Fault) -> None:
        index = self.rng.choice((1, 2, 3))
        key, server = f"httpd-rs{index}", self.state["servers"][f"rs{index}"]
        fault.target = f"rs{index}"
        dest = f"{server['address']}:80"
        fault.start = time.monotonic()
        kill_group(self.state["pids"][key])
        with self.model.lock:
            self.model.down.add(dest)
        time.sleep(SERVER_DOWN_FOR)
        docroot = Path(self.state["run_dir"]) / "www" / f"rs{index}"
        with open(Path(self.state["run_dir"]) / f"rs{index}.log", "ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", server["namespace"], BUSYBOX, "httpd", "-f", "-p", "80",
                                     "-h", str(docroot)], start_new_session=True, stdout=log, stderr=log)
        self.state["pids"][key] = proc.pid
        save_state(self.state)
        with self.model.lock:
            self.model.down.discard(dest)
        fault.outcome = f"httpd on rs{index} down {SERVER_DOWN_FOR:.0f} s"

    def spoofed_advert(self, fault: Fault) -> None:
        before = self._mismatches()
        reply = self.ask_client({"do": "spoof", "vip": self.state["vip"], "vrid": 51})
        time.sleep(1.0)
        if "error" in reply:
            fault.problems.append(f"spoofing failed: {reply['error']}")
        after = self._mismatches()
        fault.outcome = "address_mismatch drops " + ", ".join(f"{lb} +{after[lb] - before.get(lb, 0)}" for lb in after)

    def _mismatches(self) -> dict[str, int]:
        out = {}
        for lb in self.lbs:
            with contextlib.suppress(ControlError, KeyError):
                instance = request(self.socket(lb), "status")["vrrp"]["instances"]["VI_FRONT"]
                out[lb] = instance["errors"].get("address_mismatch", 0)
        return out

    def scrape_storm(self, fault: Fault) -> None:
        listen = self.model.configs[fault.target]["global"]["metrics_listen"]
        reply = self.ask_client({"do": "storm", "url": f"http://{listen}/metrics", **STORM})
        if "error" in reply:
            fault.problems.append(f"the storm failed: {reply['error']}")
        fault.outcome = f"{STORM['clients']} scrapers {STORM['seconds']} s: " + \
                        ", ".join(f"{k} {v}" for k, v in sorted(reply.items()))

    def state_dir_full(self, fault: Fault) -> None:
        """Fill the state dir's file system, drain rs1 (refused as not persisted, in force all
        the same), free the space, undrain (persisted)."""
        lb, filler = fault.target, self.state_dir(fault.target) / "chaos-filler"
        fill(filler)
        rs1 = self.state["servers"]["rs1"]["address"]
        try:
            try:
                request(self.socket(lb), "drain", address=rs1)
                fault.problems.append("a drain on a full disk was acknowledged")
            except ControlError as exc:
                fault.outcome = f"drain: {one_line(exc, 110)}; "
            with self.model.lock:
                self.model.drained[lb].update(f"{rs1}:{port}" for port in (80, self.state["stream_port"]))
            time.sleep(1.0)
        finally:
            filler.unlink(missing_ok=True)
        try:
            request(self.socket(lb), "undrain", address=rs1)
            fault.outcome += "undrain: persisted"
        except ControlError as exc:
            fault.problems.append(f"undrain with space again failed: {exc}")
        with self.model.lock:
            self.model.drained[lb].clear()

    def clock_step(self, fault: Fault) -> None:
        if os.environ.get("DIRECTORD_IN_VM") != "1":
            raise RuntimeError("the clock step runs only inside the VM rig (DIRECTORD_IN_VM=1)")
        offset = time.time() - time.monotonic()
        time.clock_settime(time.CLOCK_REALTIME, time.time() + CLOCK_STEP)
        time.sleep(CLOCK_HELD)
        time.clock_settime(time.CLOCK_REALTIME, time.monotonic() + offset)
        fault.outcome = f"wall clock +{CLOCK_STEP:.0f} s for {CLOCK_HELD:.0f} s, then back"

    def close(self) -> None:
        self.switch.close()


def one_line(exc: Exception, limit: int) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fill(path: Path) -> None:
    """Write zeros to `path` until its file system is full (a new file: O_EXCL, no symlink)."""
    chunk = bytes(64 << 10)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 512):  # the last partial block
                pass
    finally:
        os.close(fd)
