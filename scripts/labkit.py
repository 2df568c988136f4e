"""The lab toolkit: throwaway networks of namespaces, veths and bridges, and the labs built
from them, for the tests, the benchmarks, the failover lab and the demo.

- `Lab`: the one builder. Everything it makes (namespaces, root links, processes) is
  recorded and removed by `close()`, also after a failure; names carry a prefix, and by
  default this process's id, so concurrent runs never meet and `Lab.sweep(prefix)` cleans
  up after a crash.
- `VrrpLab`: N VRRP nodes and a client on one bridge (VRRP tests, the failover benchmark).
- `build_nat_lab` / `NatLab`, `build_sync_pair`: IPVS topologies (kernel tests, benchmarks).

`sh`, `in_netns`, `wait_for`, `alive` and `kill_group` come from `director.drill.proc`: the drill is
installed without scripts/, so the one copy lives there and is re-exported here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from director.config.toml_write import dumps
from director.drill.proc import alive, in_netns, kill_group, sh, wait_for
from director.ipvs.model import SYNC_RECEIVE_ANY_SIZE

__all__ = [
    "BUSYBOX", "DIRECTORD", "IFNAMSIZ", "NAT_VIP", "PYTHON", "REPO", "SYNC_ADDR", "SYNC_PORT", "SYNC_VIP", "VIP",
    "Lab", "NatLab", "VrrpLab", "add_sync_service", "alive", "build_nat_lab", "build_sync_pair",
    "dr_real_server", "fetch", "httpd_argv", "in_netns", "keepalived_conf", "kill_group", "remove_namespace",
    "require_root", "sh", "wait_for",
]

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python")
DIRECTORD = str(REPO / ".venv" / "bin" / "directord")
BUSYBOX = "/bin/busybox"
IFNAMSIZ = 15  # the longest interface name Linux takes
_labs = itertools.count()


def require_root() -> None:
    """Namespace tests must fail loudly, never skip, when they cannot run."""
    if os.geteuid() != 0:
        raise RuntimeError("netns tests need root")
    if sys.platform != "linux":
        raise RuntimeError("netns tests need Linux")


def remove_namespace(name: str) -> None:
    """Kill whatever runs in namespace `name`, then delete it (a missing one is no error)."""
    for pid in sh(["ip", "netns", "pids", name], check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    sh(["ip", "netns", "del", name], check=False)


# --- the builder ---------------------------------------------------------------------------


class Lab:
    """Namespaces, veths and bridges named `<prefix><suffix>`, removed by `close()`.

    `private` (the default) puts this process's id and a counter into the prefix: tests
    run by several people at once, and one test's lab must not be another's. The failover
    lab passes False: its names are part of its state file and of `down`."""

    def __init__(self, prefix: str, *, private: bool = True) -> None:
        self.prefix = f"{prefix}{os.getpid() % 10000}-{next(_labs)}-" if private else prefix
        self.namespaces: list[str] = []
        self.links: list[str] = []  # links in the root namespace
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def netns(self, suffix: str) -> str:
        """A new namespace with its loopback up."""
        name = self.name(suffix)
        sh(["ip", "netns", "add", name])  # never record one we did not make: close() deletes it
        self.namespaces.append(name)
        sh(["ip", "link", "set", "lo", "up"], ns=name)
        return name

    def bridge(self, name: str, ns: str | None = None, address: str | None = None,
               snooping: bool = True) -> str:
        """A bridge, up. In the root namespace it is named with the prefix (and removed by
        close()); inside a lab namespace `name` is used as given. `snooping=False` floods
        multicast to every port (VRRP adverts reach nodes that never joined a group)."""
        if ns is None:
            name = self.name(name)
            self.links.append(name)
        sh(["ip", "link", "add", name, "type", "bridge", *([] if snooping else ["mcast_snooping", "0"])], ns=ns)
        if address:
            sh(["ip", "addr", "add", address, "dev", name], ns=ns)
        sh(["ip", "link", "set", name, "up"], ns=ns)
        return name

    def veth(self, ns: str, ifname: str, address: str | None, bridge: str | None = None,
             bridge_ns: str | None = None, peer_address: str | None = None, peer: str | None = None) -> str:
        """A veth pair, both ends up: `ifname` inside ns, the peer (named `peer`, or after ns
        and ifname) in bridge_ns (root if None), enslaved to `bridge` if given. Returns the
        peer's name."""
        peer = peer or self._peer_name(ns, ifname)
        if bridge_ns is None:
            self.links.append(peer)
        sh(["ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer]
           + (["netns", bridge_ns] if bridge_ns else []))
        if address:
            self.address(ns, ifname, address)
        sh(["ip", "link", "set", ifname, "up"], ns=ns)
        if bridge:
            sh(["ip", "link", "set", peer, "master", bridge], ns=bridge_ns)
        if peer_address:
            self.address(bridge_ns, peer, peer_address)
        sh(["ip", "link", "set", peer, "up"], ns=bridge_ns)
        return peer

    def _peer_name(self, ns: str, ifname: str) -> str:
        """`<prefix><namespace>-<ifname>`, or `<prefix>v<n>` when that is too long for Linux."""
        name = self.name(f"{ns.removeprefix(self.prefix)}-{ifname}")
        if len(name) > IFNAMSIZ:
            name = self.name(f"v{len(self.links)}")
        if len(name) > IFNAMSIZ:
            raise ValueError(f"lab prefix {self.prefix!r} is too long for interface names")
        return name

    @staticmethod
    def address(ns: str | None, ifname: str, address: str) -> None:
        """Add an address; IPv6 ones skip duplicate address detection (usable at once)."""
        sh(["ip", "addr", "add", address, "dev", ifname, *(["nodad"] if ":" in address else [])], ns=ns)

    @staticmethod
    def sysctl(key: str, value: str, ns: str | None = None) -> None:
        sh(["sysctl", "-qw", f"{key}={value}"], ns=ns)

    def start(self, argv: Sequence[str], ns: str | None = None, **kwargs: Any) -> subprocess.Popen:
        """A process (in ns) in a session of its own, killed with its whole group by close()."""
        proc = subprocess.Popen(in_netns(argv, ns), start_new_session=True, **kwargs)
        self.processes.append(proc)
        return proc

    def detach(self) -> None:
        """Forget what was made: the lab outlives this object (the failover lab's `down` removes it)."""
        self.processes.clear()
        self.namespaces.clear()
        self.links.clear()

    def close(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:  # not reaped yet: its pid, and so its group, is still ours
                kill_group(proc.pid)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        for name in reversed(self.namespaces):
            remove_namespace(name)
        for link in reversed(self.links):
            sh(["ip", "link", "del", link], check=False)
        self.detach()

    @staticmethod
    def sweep(prefix: str) -> None:
        """Remove every namespace and root link whose name starts with prefix (crash leftovers)."""
        for line in sh(["ip", "netns", "list"], check=False).splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(prefix):
                remove_namespace(name)
        for line in sh(["ip", "-o", "link", "show"], check=False).splitlines():
            link = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if link.startswith(prefix):
                sh(["ip", "link", "del", link], check=False)


# --- pieces of IPVS labs -------------------------------------------------------------------


def httpd_argv(docroot: Path, body: str) -> list[str]:
    """A busybox httpd in the foreground on port 80 serving `body` at /, from docroot (made here)."""
    docroot.mkdir(parents=True, exist_ok=True)
    (docroot / "index.html").write_text(body)
    return [BUSYBOX, "httpd", "-f", "-p", "80", "-h", str(docroot)]


def fetch(ns: str | None, url: str) -> str:
    return sh(["curl", "-s", "--max-time", "10", url], ns=ns, check=False).strip()


def dr_real_server(ns: str, vip: str) -> None:
    """Make ns a direct-routing real server: the VIP on lo, never answered or announced by ARP
    (conf.all counts for every interface: the kernel takes the larger of all and the device's)."""
    sh(["ip", "addr", "add", f"{vip}/32", "dev", "lo"], ns=ns)
    Lab.sysctl("net.ipv4.conf.all.arp_ignore", "1", ns=ns)
    Lab.sysctl("net.ipv4.conf.all.arp_announce", "2", ns=ns)


# --- the NAT lab ---------------------------------------------------------------------------

NAT_VIP = "198.51.100.10"


@dataclass
class NatLab:
    """client 198.51.100.2 -> director (VIP 198.51.100.10) -> rsN at 10.0.0.1N (N = 1..count)."""

    lab: Lab
    docroot: Path
    servers: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def client(self) -> str:
        return self.lab.name("client")

    def start_server(self, index: int) -> None:
        argv = httpd_argv(self.docroot / f"rs{index}", f"rs{index}")
        self.servers[index] = self.lab.start(argv, ns=self.lab.name(f"rs{index}"))
        wait_for(lambda: fetch(None, f"http://10.0.0.1{index}/") == f"rs{index}", 30, what=f"rs{index} httpd")

    def stop_server(self, index: int) -> None:
        proc = self.servers.pop(index)
        proc.kill()
        proc.wait()


def build_nat_lab(tmp_path: Path, count: int) -> Iterator[NatLab]:
    """The director is the root namespace (its IPVS table emptied before and after)."""
    sh(["ipvsadm", "-C"])
    with Lab("dtn-") as lab:
        client = lab.netns("client")
        peer = lab.veth(client, "eth0", "198.51.100.2/24", peer_address="198.51.100.1/24")
        sh(["ip", "addr", "add", f"{NAT_VIP}/24", "dev", peer])
        bridge = lab.bridge("br", address="10.0.0.1/24")
        nat = NatLab(lab, tmp_path)
        for index in range(1, count + 1):
            rs = lab.netns(f"rs{index}")
            lab.veth(rs, "eth0", f"10.0.0.1{index}/24", bridge=bridge)
            sh(["ip", "route", "add", "default", "via", "10.0.0.1"], ns=rs)
            nat.start_server(index)
        lab.sysctl("net.ipv4.ip_forward", "1")
        yield nat
    sh(["ipvsadm", "-C"])


# --- two directors syncing one DR service --------------------------------------------------

SYNC_VIP, SYNC_PORT = "10.77.0.100", 80
SYNC_ADDR = {"client": "10.77.0.1", "master": "10.77.0.2", "backup": "10.77.0.3", "server": "10.77.0.4"}
BACKUP_MAXLEN = SYNC_RECEIVE_ANY_SIZE - 28  # the most ipvsadm takes for IPv4: the kernel's bound less the headers


def add_sync_service(ns: str) -> None:
    """The pair's one TCP service, VIP:80 by direct routing to the real server."""
    sh(["ipvsadm", "-A", "-t", f"{SYNC_VIP}:{SYNC_PORT}", "-s", "rr"], ns=ns)
    sh(["ipvsadm", "-a", "-t", f"{SYNC_VIP}:{SYNC_PORT}", "-r", f"{SYNC_ADDR['server']}:{SYNC_PORT}", "-g"], ns=ns)


def build_sync_pair(lab: Lab, syncid: int) -> dict[str, str]:
    """Client, master, backup and a DR real server on one bridge, the service on both directors,
    the VIP on the master. The backup's kernel runs its sync thread (any packet size); the
    master's runs none yet. Returns the namespaces by role."""
    bridge = lab.bridge("br")
    ns = {role: lab.netns(role) for role in SYNC_ADDR}
    for role, address in SYNC_ADDR.items():
        lab.veth(ns[role], "eth0", f"{address}/24", bridge=bridge)
    sh(["ip", "addr", "add", f"{SYNC_VIP}/32", "dev", "eth0"], ns=ns["master"])
    dr_real_server(ns["server"], SYNC_VIP)
    for role in ("master", "backup"):
        add_sync_service(ns[role])
    sh(["ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", str(syncid),
        "--sync-maxlen", str(BACKUP_MAXLEN)], ns=ns["backup"])
    return ns


# --- the VRRP lab --------------------------------------------------------------------------

VIP = "192.0.2.100"
CLIENT_ADDRESS = "192.0.2.50"
# Config tables that stay inline, as a person would write them.
_INLINE = frozenset({"garp", "track_interfaces", "track_virtual_servers", "track_scripts", "track_files"})


class VrrpLab:
    """One L2 segment of namespaces: `<prefix>sw` holds bridge br0, nodes `<prefix>n<i>` sit at
    192.0.2.<i>, the client `<prefix>c` at 192.0.2.50, each on its eth0 (switch port p<i>).
    Daemons log to `<tmp>/<node>.log`."""

    def __init__(self, nodes: int, tmp: Path) -> None:
        self.net = Lab("dvr-")
        self.tmp = tmp
        self.nodes = [self.net.name(f"n{i + 1}") for i in range(nodes)]
        self.client = self.net.name("c")
        self.sw = self.net.name("sw")
        self.procs: dict[str, subprocess.Popen] = {}
        try:
            self._build()
        except BaseException:
            self.close()  # a half-built lab must not leak namespaces
            raise

    def _build(self) -> None:
        sw = self.net.netns("sw")
        self.net.bridge("br0", ns=sw, snooping=False)
        for i, ns in enumerate([*self.nodes, self.client], start=1):
            self.net.netns(ns.removeprefix(self.net.prefix))
            address = CLIENT_ADDRESS if ns == self.client else self.addr(i)
            self.net.veth(ns, "eth0", f"{address}/24", bridge="br0", bridge_ns=sw, peer=f"p{i}")

    def addr(self, i: int) -> str:
        """Node i's (1-based) address."""
        return f"192.0.2.{i}"

    def port(self, node: str) -> str:
        return f"p{self.nodes.index(node) + 1}"

    def mac(self, ns: str) -> str:
        out = sh(["ip", "-o", "link", "show", "eth0"], ns=ns)
        found = re.search(r"link/ether ([0-9a-f:]{17})", out)
        assert found, out
        return found.group(1)

    # --- daemons -----------------------------------------------------------------------------

    def write_config(self, node: str, *, daemon: bool = False, **kw: object) -> Path:
        """A directord.toml; keyword arguments override the first instance's defaults,
        `instances=[{...}]` adds more instance tables verbatim, `tables={...}` more
        top-level tables (`vrrp_script`, `track_file`). `daemon`: also the [global]
        keys `directord run` needs to run beside others (its own control socket and
        state, no metrics listener)."""
        first: dict[str, object] = {
            "name": "VI_1", "interface": "eth0", "vrid": 51, "priority": 100, "version": 3,
            "advert_interval": "100ms", "preempt": True, "virtual_ips": [f"{VIP}/24"],
            "garp": {"repeat": 3, "interval": "50ms"},
        }
        extra = kw.pop("instances", [])
        tables = dict(kw.pop("tables", {}))  # type: ignore[call-overload]
        first.update(kw)
        global_: dict[str, object] = {"router_id": node}
        if daemon:
            global_ |= {"control_socket": f"{self.tmp}/{node}.sock", "state_dir": f"{self.tmp}/{node}-state",
                        "metrics_listen": ""}
        path = self.tmp / f"{node}.toml"
        path.write_text(dumps({"global": global_, **tables, "vrrp_instance": [first, *extra]}, inline_keys=_INLINE))
        return path

    def _run(self, node: str, argv: list[str]) -> subprocess.Popen:
        """argv in node's namespace, logging to a fresh `<node>.log`; it is node's daemon now."""
        with open(self._fresh_log(node), "ab") as log:
            proc = self.net.start(argv, ns=node, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=REPO)
        self.procs[node] = proc
        return proc

    def start(self, node: str, **kw: object) -> subprocess.Popen:
        """`python -m vrrp` (the VRRP part alone) on write_config(node, **kw)."""
        cfg = self.write_config(node, **kw)
        return self._run(node, [PYTHON, "-m", "vrrp", "-c", str(cfg), "--log-level", "debug"])

    def start_directord(self, node: str, **kw: object) -> subprocess.Popen:
        """The whole daemon, `directord run`, on write_config(node, daemon=True, **kw)."""
        cfg = self.write_config(node, daemon=True, **kw)
        return self._run(node, [DIRECTORD, "run", "-c", str(cfg)])

    def start_keepalived(self, node: str, conf: str) -> subprocess.Popen:
        """keepalived -P (VRRP only) in the foreground, with its own pid files."""
        path = self.tmp / f"{node}-keepalived.conf"
        path.write_text(conf)
        return self._run(node, ["keepalived", "-P", "-n", "-l", "-D", "-f", str(path),
                                "-p", str(self.tmp / f"{node}-ka.pid"), "-r", str(self.tmp / f"{node}-ka-vrrp.pid")])

    def _fresh_log(self, node: str) -> Path:
        """`<node>.log` belongs to the latest process; older runs keep numbered copies."""
        path = self.tmp / f"{node}.log"
        if path.exists():
            n = len(list(self.tmp.glob(f"{node}.run*.log")))
            path.rename(self.tmp / f"{node}.run{n}.log")
        return path

    def log(self, node: str) -> str:
        path = self.tmp / f"{node}.log"
        return path.read_text() if path.exists() else ""

    def signal(self, node: str, sig: int) -> None:
        proc = self.procs[node]
        # `ip netns exec` execs the program, so the pid is the daemon itself.
        os.kill(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout=10)

    # --- observations ------------------------------------------------------------------------

    def has_vip(self, ns: str, vip: str = VIP) -> bool:
        fam, word = ("-6", "inet6") if ":" in vip else ("-4", "inet")
        return f"{word} {vip}/" in sh(["ip", fam, "addr", "show", "dev", "eth0"], ns=ns)

    def holders(self, vip: str = VIP) -> list[str]:
        return [n for n in self.nodes if self.has_vip(n, vip)]

    def add_ipv6(self) -> None:
        """Give every namespace fd00::<i>/64 (client fd00::50), without DAD delays."""
        for i, ns in enumerate([*self.nodes, self.client], start=1):
            self.net.address(ns, "eth0", f"{'fd00::50' if ns == self.client else f'fd00::{i}'}/64")

    def wait_for(self, cond: Callable[[], object], timeout: float, step: float = 0.01) -> float:
        """Poll until cond() is true; return the elapsed seconds, or fail showing the logs."""
        try:
            return wait_for(cond, timeout, step)
        except TimeoutError:
            raise AssertionError(f"condition not met in {timeout}s; logs:\n{self.all_logs()}") from None

    def wait_master(self, node: str, timeout: float = 5.0, vip: str = VIP) -> float:
        return self.wait_for(lambda: self.holders(vip) == [node], timeout)

    def wait_backup(self, *nodes: str, timeout: float = 10.0) -> None:
        """Wait until each node's current daemon is up and following (Backup)."""
        def following(node: str) -> bool:
            log = self.log(node)  # console (python -m vrrp) or JSON (directord run) lines
            return "new=backup" in log or '"new":"backup"' in log

        for node in nodes:
            self.wait_for(lambda n=node: following(n), timeout)

    def neigh_mac(self, vip: str = VIP) -> str | None:
        out = sh(["ip", "neigh", "show", vip, "dev", "eth0"], ns=self.client)
        m = re.search(r"lladdr ([0-9a-f:]{17})", out)
        return m.group(1) if m else None

    def all_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def isolate(self, node: str, on: bool) -> None:
        """Cut (or restore) a node from the other nodes while its link stays up."""
        sh(["bridge", "link", "set", "dev", self.port(node), "isolated", "on" if on else "off"], ns=self.sw)

    def close(self) -> None:
        """Kill every daemon with its process group, then remove the namespaces."""
        self.net.close()
        self.procs.clear()


def keepalived_conf(
    node_addr: str, *, priority: int, version: int, interval: str, peers: list[str],
    preempt: bool = True, vip: str = f"{VIP}/24", use_vmac: bool = False,
) -> str:
    """A VRRP-only keepalived.conf mirroring one directord instance (`use_vmac`: its VIP on vrrp.51)."""
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
        *(["  use_vmac"] if use_vmac else []),
        "  virtual_ipaddress {",
        f"    {vip}" if use_vmac else f"    {vip} dev eth0",
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

