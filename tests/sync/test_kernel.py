"""Connection sync follows VRRP against a real kernel (VM rig): a master runs both sync
threads, a master that leaves keeps its thread for the kernel's flush and hands its newest
connections over, a stop leaves the threads."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from director.sync.follow import HANDOVER_GRACE
from scripts.labkit import Lab, sh, wait_for
from tests.daemon.test_daemon_netns import start_daemon, vrrp_state

SYNC = """
[ipvs]
sync_daemon = { interface = "eth0", syncid = 7 }

[[virtual_server]]
name = "web"
address = "192.0.2.50"
port = 80
scheduler = "rr"
method = "nat"
  [virtual_server.check]
  type = "none"
  [[virtual_server.real_server]]
  address = "10.9.0.11"
"""


def threads(ns: str) -> set[str]:
    """The sync threads `ipvsadm` reports in the namespace: {"master", "backup"} or fewer."""
    out = sh(["ipvsadm", "-L", "--daemon"], ns=ns)
    return {line.split()[0] for line in out.splitlines() if "sync daemon" in line}


def logged(log: Path, match: Callable[[dict], bool]) -> float:
    """The Unix time of the first JSON log event that matches."""
    for line in log.read_text().splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if match(event):
            return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    raise AssertionError("no such log event")


def json_logs(text: str) -> str:
    """The daemon config with JSON log lines (read back by `logged`) and connection sync."""
    return text.replace('metrics_listen = ""', 'metrics_listen = ""\nlog_format = "json"') + SYNC


def test_sync_threads_follow_vrrp_with_a_grace(tmp_path: Path) -> None:
    with Lab("dsy-") as lab:
        log = tmp_path / "daemon.log"
        ns, sock, daemon = start_daemon(lab, tmp_path, edit=json_logs, log=log)
        try:
            wait_for(lambda: vrrp_state(sock) == "master", 60, what="master")
            wait_for(lambda: threads(ns) == {"master", "backup"}, 60, what="both sync threads on the master")
            daemons = sh(["ipvsadm", "-L", "--daemon"], ns=ns)
            assert "master sync daemon (mcast=eth0, syncid=7, maxlen=64," in daemons  # one connection each
            assert "backup sync daemon (mcast=eth0, syncid=7, maxlen=65507," in daemons  # any peer's size

            sh(["ip", "link", "set", "eth0", "down"], ns=ns)  # fault: no longer master
            wait_for(lambda: threads(ns) == {"backup"}, 60, what="the master thread stopped after the grace")
            # Kept while the kernel flushes what it has not sent (timed from the daemon's own log:
            # polling through the CLI is seconds slow in the emulated VM).
            fault = logged(log, lambda e: e.get("new") == "fault")
            stopped = logged(log, lambda e: e.get("stopped") == ["master"])
            assert HANDOVER_GRACE <= stopped - fault < HANDOVER_GRACE + 2.0
            # Leaving master re-sends the newest connections (none here; the link is down): it is
            # tried, and whatever it meets is logged, not raised.
            handover = logged(log, lambda e: e.get("event") in ("connections handed over to the peer",
                                                                "connection handover to the peer failed"))
            assert fault <= handover < stopped

            sh(["ip", "link", "set", "eth0", "up"], ns=ns)
            wait_for(lambda: threads(ns) == {"master", "backup"}, 60, what="master again")
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
            assert threads(ns) == {"master", "backup"}  # a stop leaves them: the kernel keeps syncing
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            print(log.read_text()[-3000:])
