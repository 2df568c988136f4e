"""A throwaway L2 lab of network namespaces: one bridge, N VRRP nodes, one client.

Everything is named `dvr-<tag>-*` and torn down by `close()`, which fixtures
call even when a test fails.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
VIP = "192.0.2.100"
_seq = itertools.count()


def sh(*args: str, check: bool = True) -> str:
    res = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


class Lab:
    """Namespaces `<tag>-sw` (bridge), `<tag>-n<i>` nodes, `<tag>-c` client."""

    def __init__(self, nodes: int, tmp: Path) -> None:
        self.tag = f"dvr-{os.getpid() % 10000}-{next(_seq)}"
        self.tmp = tmp
        self.nodes = [f"{self.tag}-n{i + 1}" for i in range(nodes)]
        self.client = f"{self.tag}-c"
        self.sw = f"{self.tag}-sw"
        self.procs: dict[str, subprocess.Popen] = {}
        self.extra: list[subprocess.Popen] = []
        self.namespaces: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()  # a half-built lab must not leak namespaces
            raise

    def addr(self, i: int) -> str:
        """Node i's (1-based) address; the client is .50."""
        return f"192.0.2.{i}"

    def _build(self) -> None:
        self._netns(self.sw)
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        sh("ip", "-n", self.sw, "link", "set", "br0", "up")
        for i, ns in enumerate([*self.nodes, self.client], start=1):
            self._netns(ns)
            port = f"p{i}"
            sh("ip", "link", "add", port, "netns", self.sw, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.sw, "link", "set", port, "master", "br0", "up")
            addr = "192.0.2.50" if ns == self.client else self.addr(i)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def _netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)

    def port(self, node: str) -> str:
        return f"p{self.nodes.index(node) + 1}"

    def mac(self, ns: str) -> str:
        out = sh("ip", "-n", ns, "-o", "link", "show", "eth0")
        return re.search(r"link/ether ([0-9a-f:]{17})", out).group(1)

    # --- daemons -----------------------------------------------------------------

    def write_config(self, node: str, *, daemon: bool = False, **kw: object) -> Path:
        """A directord.toml; keyword arguments override the first instance's defaults,
        `instances=[{...}]` adds more instance tables verbatim. `daemon`: also the
        [global] keys `directord run` needs to run beside others (its own control
        socket and state, no metrics listener)."""
        vals: dict[str, object] = {
            "name": "VI_1", "interface": "eth0", "vrid": 51, "priority": 100, "version": 3,
            "advert_interval": "100ms", "preempt": True, "virtual_ips": [f"{VIP}/24"],
            "garp": {"repeat": 3, "interval": "50ms"},
        }
        extra = kw.pop("instances", [])
        vals.update(kw)
        lines = ["[global]", f'router_id = "{node}"']
        if daemon:
            lines += [f'control_socket = "{self.tmp}/{node}.sock"', f'state_dir = "{self.tmp}/{node}-state"',
                      'metrics_listen = ""']
        for table in [vals, *extra]:  # extra instances: full tables of their own
            lines += ["", "[[vrrp_instance]]"]
            lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
        path = self.tmp / f"{node}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, node: str, **kw: object) -> subprocess.Popen:
        cfg = self.write_config(node, **kw)
        log = open(self._fresh_log(node), "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            ["ip", "netns", "exec", node, PYTHON, "-m", "vrrp", "-c", str(cfg),
             "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.procs[node] = proc
        return proc

    def _fresh_log(self, node: str) -> Path:
        """`<node>.log` belongs to the latest process; older runs keep numbered copies."""
        path = self.tmp / f"{node}.log"
        if path.exists():
            n = len(list(self.tmp.glob(f"{node}.run*.log")))
            path.rename(self.tmp / f"{node}.run{n}.log")
        return path

    def spawn(self, ns: str, argv: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.tmp / log_name, "ab")  # noqa: SIM115
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log,
                                stderr=subprocess.STDOUT)
        self.extra.append(proc)
        return proc

    def log(self, node: str) -> str:
        path = self.tmp / f"{node}.log"
        return path.read_text() if path.exists() else ""

    def signal(self, node: str, sig: int) -> None:
        proc = self.procs[node]
        # `ip netns exec` execs the program, so the pid is the daemon itself.
        os.kill(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout=10)

    # --- observations ------------------------------------------------------------

    def has_vip(self, ns: str, vip: str = VIP) -> bool:
        fam, word = ("-6", "inet6") if ":" in vip else ("-4", "inet")
        return f"{word} {vip}/" in sh("ip", "-n", ns, fam, "addr", "show", "dev", "eth0")

    def holders(self, vip: str = VIP) -> list[str]:
        return [n for n in self.nodes if self.has_vip(n, vip)]

    def add_ipv6(self) -> None:
        """Give every namespace fd00::<i>/64 (client fd00::50), without DAD delays."""
        for i, ns in enumerate([*self.nodes, self.client], start=1):
            addr = "fd00::50" if ns == self.client else f"fd00::{i}"
            sh("ip", "-n", ns, "addr", "add", f"{addr}/64", "dev", "eth0", "nodad")

    def wait_for(self, cond, timeout: float, step: float = 0.01) -> float:
        """Poll until cond() is true; return the elapsed seconds or raise."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if cond():
                return time.monotonic() - t0
            time.sleep(step)
        raise AssertionError(f"condition not met in {timeout}s; logs:\n{self.all_logs()}")

    def wait_master(self, node: str, timeout: float = 5.0, vip: str = VIP) -> float:
        return self.wait_for(lambda: self.holders(vip) == [node], timeout)

    def wait_backup(self, *nodes: str, timeout: float = 10.0) -> None:
        """Wait until each node's current daemon is up and following (Backup)."""
        def following(node: str) -> bool:
            log = self.log(node)  # console (python -m vrrp) or JSON (directord run) lines
            return "new=backup" in log or '"new": "backup"' in log

        for node in nodes:
            self.wait_for(lambda n=node: following(n), timeout)

    def neigh_mac(self, vip: str = VIP) -> str | None:
        out = sh("ip", "-n", self.client, "neigh", "show", vip, "dev", "eth0")
        m = re.search(r"lladdr ([0-9a-f:]{17})", out)
        return m.group(1) if m else None

    def all_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def isolate(self, node: str, on: bool) -> None:
        """Cut (or restore) a node from the other nodes while its link stays up."""
        sh("bridge", "-n", self.sw, "link", "set", "dev", self.port(node),
           "isolated", "on" if on else "off")

    def close(self) -> None:
        for proc in [*self.procs.values(), *self.extra]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def require_root() -> None:
    """Namespace tests must fail loudly, never skip, when they cannot run."""
    if os.geteuid() != 0:
        raise RuntimeError("netns tests need root")
    if sys.platform != "linux":
        raise RuntimeError("netns tests need Linux")


def keepalived_conf(
    node_addr: str, *, priority: int, version: int, interval: str, peers: list[str],
    preempt: bool = True, vip: str = f"{VIP}/24",
) -> str:
    """A VRRP-only keepalived.conf mirroring one directord instance."""
    lines = [
        "global_defs {",
        f"  router_id ka_{node_addr.replace('.', '_')}",
        f"  vrrp_version {version}",
        "  vrrp_garp_master_delay 0",
        "  vrrp_garp_master_repeat 3",
        "}",
        "vrrp_instance VI_1 {",
        "  state BACKUP",
        "  interface eth0",
        "  virtual_router_id 51",
        f"  priority {priority}",
        f"  advert_int {interval}",
        "  virtual_ipaddress {",
        f"    {vip} dev eth0",
        "  }",
    ]
    if not preempt:
        lines.append("  nopreempt")
    if peers:
        lines += [f"  unicast_src_ip {node_addr}", "  unicast_peer {"]
        lines += [f"    {p}" for p in peers]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def start_keepalived(lab: Lab, node: str, conf: str) -> subprocess.Popen:
    """keepalived -P (VRRP only) in the foreground, with its own pid files."""
    path = lab.tmp / f"{node}-keepalived.conf"
    path.write_text(conf)
    argv = [
        "keepalived", "-P", "-n", "-l", "-D", "-f", str(path),
        "-p", str(lab.tmp / f"{node}-ka.pid"), "-r", str(lab.tmp / f"{node}-ka-vrrp.pid"),
    ]
    log = open(lab._fresh_log(node), "ab")  # noqa: SIM115
    proc = subprocess.Popen(["ip", "netns", "exec", node, *argv], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    lab.procs[node] = proc
    return proc
