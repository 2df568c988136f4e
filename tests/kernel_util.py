"""Helpers for tests that run against a real IPVS kernel (inside the VM rig)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from director.cli import main
from director.ipvs.model import SYNC_RECEIVE_ANY_SIZE
from scripts.labkit import Lab, run, wait_for


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], check=True, capture_output=True, text=True).stdout


def rules() -> set[str]:
    """The kernel table as `ipvsadm -Sn` rule lines: an independent view of what is programmed."""
    return {line.strip() for line in ipvsadm("-S", "-n").splitlines() if line.strip()}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def directord(*args: str, config: Path | str | None = None) -> Result:
    """Run the CLI in this process: the same code path as the console script, without a
    10-30 s interpreter start per call under the VM's emulated CPU."""
    argv = [*args, *(["-c", str(config)] if config is not None else [])]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return Result(code, out.getvalue(), err.getvalue())


def apply_json(config: Path | str, state_dir: Path | str) -> dict:
    proc = directord("apply", "--json", "--state-dir", str(state_dir), config=config)
    assert proc.returncode in (0, 2), proc.stderr
    return json.loads(proc.stdout) | {"returncode": proc.returncode, "stderr": proc.stderr}


# --- the NAT lab -----------------------------------------------------------------------

BUSYBOX = "/bin/busybox"
NAT_VIP = "198.51.100.10"


def fetch(ns: str | None, url: str) -> str:
    return run(["curl", "-s", "--max-time", "10", url], ns=ns, check=False).strip()


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
        root = self.docroot / f"rs{index}"
        root.mkdir(exist_ok=True)
        (root / "index.html").write_text(f"rs{index}")
        ns = self.lab.name(f"rs{index}")
        self.servers[index] = self.lab.start([BUSYBOX, "httpd", "-f", "-p", "80", "-h", str(root)], ns=ns)
        wait_for(lambda: fetch(None, f"http://10.0.0.1{index}/") == f"rs{index}", 30, what=f"rs{index} httpd")

    def stop_server(self, index: int) -> None:
        proc = self.servers.pop(index)
        proc.kill()
        proc.wait()


def build_nat_lab(tmp_path: Path, count: int) -> Iterator[NatLab]:
    ipvsadm("-C")
    with Lab("dtn-") as lab:
        client = lab.netns("client")
        peer = lab.veth(client, "eth0", "198.51.100.2/24", peer_address="198.51.100.1/24")
        run(["ip", "addr", "add", f"{NAT_VIP}/24", "dev", peer])
        bridge = lab.bridge("br", address="10.0.0.1/24")
        nat = NatLab(lab, tmp_path)
        for index in range(1, count + 1):
            rs = lab.netns(f"rs{index}")
            lab.veth(rs, "eth0", f"10.0.0.1{index}/24", bridge=bridge)
            run(["ip", "route", "add", "default", "via", "10.0.0.1"], ns=rs)
            nat.start_server(index)
        lab.sysctl("net.ipv4.ip_forward", "1")
        yield nat
    ipvsadm("-C")


# --- two directors syncing one DR service ------------------------------------------------

SYNC_VIP, SYNC_PORT = "10.77.0.100", 80
SYNC_ADDR = {"client": "10.77.0.1", "master": "10.77.0.2", "backup": "10.77.0.3", "server": "10.77.0.4"}
BACKUP_MAXLEN = SYNC_RECEIVE_ANY_SIZE - 28  # the most ipvsadm takes for IPv4: the kernel's bound less the headers


def add_sync_service(ns: str) -> None:
    """The pair's one TCP service, VIP:80 by direct routing to the real server."""
    run(["ipvsadm", "-A", "-t", f"{SYNC_VIP}:{SYNC_PORT}", "-s", "rr"], ns=ns)
    run(["ipvsadm", "-a", "-t", f"{SYNC_VIP}:{SYNC_PORT}", "-r", f"{SYNC_ADDR['server']}:{SYNC_PORT}", "-g"], ns=ns)


def build_sync_pair(lab: Lab, syncid: int) -> dict[str, str]:
    """Client, master, backup and a DR real server on one bridge, the service on both directors,
    the VIP on the master. The backup's kernel runs its sync thread (any packet size); the
    master's runs none yet. Returns the namespaces by role."""
    bridge = lab.bridge("br")
    ns = {role: lab.netns(role) for role in SYNC_ADDR}
    for role, address in SYNC_ADDR.items():
        lab.veth(ns[role], "eth0", f"{address}/24", bridge=bridge)
    run(["ip", "addr", "add", f"{SYNC_VIP}/32", "dev", "eth0"], ns=ns["master"])
    run(["ip", "addr", "add", f"{SYNC_VIP}/32", "dev", "lo"], ns=ns["server"])
    lab.sysctl("net.ipv4.conf.all.arp_ignore", "1", ns=ns["server"])  # the VIP on lo stays silent
    lab.sysctl("net.ipv4.conf.all.arp_announce", "2", ns=ns["server"])
    for role in ("master", "backup"):
        add_sync_service(ns[role])
    run(["ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", str(syncid),
         "--sync-maxlen", str(BACKUP_MAXLEN)], ns=ns["backup"])
    return ns
