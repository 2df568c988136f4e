"""Build throwaway network labs from namespaces, veths and bridges, and tear them down.

Used by the demo, the lab and the tests. Every namespace, link and process a
`Lab` makes is recorded and removed by `close()`, also after a failure.
Names carry a prefix so a crashed run can be cleaned with `Lab.sweep(prefix)`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence


def run(argv: Sequence[str], ns: str | None = None, check: bool = True, timeout: float = 30.0) -> str:
    """Run argv (in namespace ns) and return stdout; raise with stderr on failure."""
    full = (["ip", "netns", "exec", ns, *argv]) if ns else list(argv)
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


class Lab:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
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
        name = self.name(suffix)
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "link", "set", "lo", "up"], ns=name)
        return name

    def bridge(self, suffix: str, ns: str | None = None, address: str | None = None) -> str:
        name = self.name(suffix)
        run(["ip", "link", "add", name, "type", "bridge"], ns=ns)
        if ns is None:
            self.links.append(name)
        if address:
            run(["ip", "addr", "add", address, "dev", name], ns=ns)
        run(["ip", "link", "set", name, "up"], ns=ns)
        return name

    def veth(self, ns: str, ifname: str, address: str | None, bridge: str | None = None,
             bridge_ns: str | None = None, peer_address: str | None = None) -> str:
        """A veth pair: `ifname` inside ns, the peer in bridge_ns (root if None), enslaved to bridge."""
        peer = self.name(f"{ns[-6:]}-{ifname}")[:15]
        run(["ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer]
            + (["netns", bridge_ns] if bridge_ns else []))
        if bridge_ns is None:
            self.links.append(peer)
        if address:
            run(["ip", "addr", "add", address, "dev", ifname, "nodad"] if ":" in address
                else ["ip", "addr", "add", address, "dev", ifname], ns=ns)
        run(["ip", "link", "set", ifname, "up"], ns=ns)
        if bridge:
            run(["ip", "link", "set", peer, "master", bridge], ns=bridge_ns)
        if peer_address:
            run(["ip", "addr", "add", peer_address, "dev", peer], ns=bridge_ns)
        run(["ip", "link", "set", peer, "up"], ns=bridge_ns)
        return peer

    def sysctl(self, key: str, value: str, ns: str | None = None) -> None:
        run(["sysctl", "-qw", f"{key}={value}"], ns=ns)

    def start(self, argv: Sequence[str], ns: str | None = None, **kwargs: object) -> subprocess.Popen:
        full = (["ip", "netns", "exec", ns, *argv]) if ns else list(argv)
        proc = subprocess.Popen(full, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        for name in reversed(self.namespaces):
            _kill_namespace_pids(name)
            run(["ip", "netns", "del", name], check=False)
        for link in reversed(self.links):
            run(["ip", "link", "del", link], check=False)
        self.processes.clear()
        self.namespaces.clear()
        self.links.clear()

    @staticmethod
    def sweep(prefix: str) -> None:
        """Remove every namespace and root link whose name starts with prefix (crash leftovers)."""
        for line in run(["ip", "netns", "list"], check=False).splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(prefix):
                _kill_namespace_pids(name)
                run(["ip", "netns", "del", name], check=False)
        for line in run(["ip", "-o", "link", "show"], check=False).splitlines():
            link = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if link.startswith(prefix):
                run(["ip", "link", "del", link], check=False)


def _kill_namespace_pids(name: str) -> None:
    for pid in run(["ip", "netns", "pids", name], check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
