"""How the drill stops a director: the signal goes to its whole process group (children included,
keepalived's VRRP child or directord's), as systemd's default KillMode=control-group does."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from director.drill.runner import group_members, send_stop

# A session leader that forks a child, like a daemon with a worker process.
DAEMON = "sleep 300 & echo $!; wait"


def start() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(["bash", "-c", DAEMON], start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_sigkill_takes_the_whole_group() -> None:
    proc, child = start()
    assert set(group_members(proc.pid)) == {proc.pid, child}
    before = time.time()
    at = send_stop(proc.pid, signal.SIGKILL)
    assert before <= at <= time.time()
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while not gone(child) and time.time() < deadline:
        time.sleep(0.02)
    assert gone(child)
    assert group_members(proc.pid) == []


def test_sigterm_reaches_every_process_of_the_group() -> None:
    proc, child = start()
    try:
        send_stop(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) != 0
        deadline = time.time() + 10
        while not gone(child) and time.time() < deadline:
            time.sleep(0.02)
        assert gone(child)  # the child heard the signal itself, not through its parent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
