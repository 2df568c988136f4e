"""The handover flush against real kernels (VM rig): a connection the master's kernel never
synced reaches the peer's kernel from directord's flush alone, and directord's message for a
connection matches the one the kernel's own master thread sends for it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from director.sync.wire import FLAGS_A_PEER_KEEPS, decode, parse_conn_sync
from scripts.labkit import SYNC_ADDR as ADDR
from scripts.labkit import SYNC_PORT as PORT
from scripts.labkit import SYNC_VIP as VIP
from scripts.labkit import Lab, build_sync_pair, sh, wait_for

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]
SYNCID = 9

SERVER = """
import socket, threading, time
listener = socket.create_server(("0.0.0.0", 80))
print("ready", flush=True)
held = []
while True:
    conn, _ = listener.accept()
    held.append(conn)  # kept open: after the client's FIN the connection stays in FIN_WAIT
"""
CLIENT = """
import socket, sys
sock = socket.create_connection((sys.argv[1], 80), timeout=10)
sock.sendall(b"GET")
print(sock.getsockname()[1], flush=True)
sys.stdin.readline()
sock.close()
print("closed", flush=True)
sys.stdin.readline()
"""
SNIFFER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("224.0.0.81", 8848))
group = socket.inet_aton("224.0.0.81") + socket.inet_aton(sys.argv[1])
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
print("ready", flush=True)
while True:
    print(s.recv(65535).hex(), flush=True)
"""
FLUSHER = """
import json, sys
from director.config.model import SyncDaemonConfig
from director.ipvs.kernel import NetlinkIpvs
from director.sync.flush import flush
kernel = NetlinkIpvs()
print("ready", flush=True)
for _ in sys.stdin:
    report = flush(SyncDaemonConfig(interface="eth0", syncid=int(sys.argv[1])), kernel.dump(), kernel.get_timeouts())
    print(json.dumps({"connections": report.connections, "packets": report.packets}), flush=True)
"""


@dataclass
class Pair:
    lab: Lab
    ns: dict[str, str]

    def python(self, role: str, code: str, *args: str) -> subprocess.Popen:
        return self.lab.start([PYTHON, "-c", code, *args], ns=self.ns[role], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=str(REPO))

    def backup_table(self) -> list:
        return parse_conn_sync(sh(["cat", "/proc/net/ip_vs_conn_sync"], ns=self.ns["backup"]))


def line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The next stdout line of a helper, failing the test rather than hanging on a dead one."""
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert result and result[0], f"helper {proc.args} said nothing in {timeout:.0f}s"
    return result[0].strip()


def tell(proc: subprocess.Popen, text: str = "go") -> None:
    assert proc.stdin is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()


@pytest.fixture
def pair() -> Iterator[Pair]:
    """Client, master, backup and a DR real server on one bridge; the same service on both
    directors; the backup's kernel runs its sync thread, the master's none yet."""
    Lab.sweep("dsf-")
    with Lab("dsf-") as lab:
        ns = build_sync_pair(lab, SYNCID)
        yield Pair(lab, ns)


def test_flushed_connections_reach_the_peer_kernel_as_the_kernel_sends_them(pair: Pair) -> None:
    helpers = {role: pair.python(role, code, *args) for role, code, args in
               (("server", SERVER, ()), ("backup", SNIFFER, (ADDR["backup"],)), ("master", FLUSHER, (str(SYNCID),)))}
    for helper in helpers.values():
        assert line(helper) == "ready"
    sniffer, flusher = helpers["backup"], helpers["master"]
    client = pair.python("client", CLIENT, VIP)
    port = int(line(client))

    # The master's kernel has no sync thread: only the flush can tell the backup.
    tell(flusher)
    assert json.loads(line(flusher)) == {"connections": 1, "packets": 1}
    ours_established = decode(bytes.fromhex(line(sniffer)))
    wait_for(lambda: any(r.client_port == port and r.state == "ESTABLISHED" for r in pair.backup_table()),
             10, what="the backup's kernel to install the flushed connection")
    (dest,) = [row.split() for row in sh(["ipvsadm", "-Ln"], ns=pair.ns["backup"]).splitlines()
               if f"{ADDR['server']}:{PORT}" in row]
    assert dest[2:] == ["Route", "1", "1", "0"]  # weight 1, one active connection: established

    # Now the kernel's own master thread (directord's packet size) reports the client's FIN;
    # directord's flush of the same connection must say the same to the peer.
    sh(["ipvsadm", "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", str(SYNCID),
        "--sync-maxlen", "64"], ns=pair.ns["master"])
    tell(client)
    assert line(client) == "closed"
    kernels = decode(bytes.fromhex(line(sniffer, timeout=30)))
    tell(flusher)
    assert json.loads(line(flusher)) == {"connections": 1, "packets": 1}
    ours = decode(bytes.fromhex(line(sniffer)))

    assert ours_established[0] == kernels[0] == ours[0] == SYNCID
    (kernel_conn,), (our_conn,) = kernels[1], ours[1]
    assert kernel_conn.state == our_conn.state == 4  # FIN_WAIT
    assert kernel_conn.flags & FLAGS_A_PEER_KEEPS == our_conn.flags & FLAGS_A_PEER_KEEPS
    for name in ("protocol", "client", "client_port", "virtual", "virtual_port", "dest", "dest_port", "fwmark",
                 "timeout"):
        assert getattr(kernel_conn, name) == getattr(our_conn, name), name
    assert ours_established[1][0].client_port == port
