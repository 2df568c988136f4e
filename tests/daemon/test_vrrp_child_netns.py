"""VRRP runs in a child process of `directord run`: how the pair lives and dies
(real processes in a network namespace)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.labkit import Lab, alive, sh, wait_for
from tests.daemon.test_daemon_netns import start_daemon, status, vrrp_state

VIP = "192.0.2.50"


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def has_vip(lab: Lab, ns: str) -> bool:
    return f" {VIP}/" in sh(["ip", "-n", ns, "-4", "addr", "show", "dev", "eth0"])


class Pair:
    def __init__(self, lab: Lab, ns: str, sock: Path, daemon: subprocess.Popen, log: Path) -> None:
        self.lab, self.ns, self.sock, self.daemon, self.log = lab, ns, sock, daemon, log

    @property
    def child(self) -> int:
        [pid] = children(self.daemon.pid)
        return pid


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with Lab("dvp-") as lab:
        log = tmp_path / "daemon.log"
        ns, sock, daemon = start_daemon(lab, tmp_path, log=log)
        wait_for(lambda: vrrp_state(sock) == "master", 20, what="master")
        yield Pair(lab, ns, sock, daemon, log)
        with_group_gone(daemon)


def with_group_gone(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(10)


def test_vrrp_runs_in_a_named_child_whose_counters_status_reads(pair: Pair) -> None:
    child = pair.child
    assert Path(f"/proc/{child}/comm").read_text().strip() == "directord-vrrp"
    first = status(pair.sock)["vrrp"]["instances"]["VI_1"]["adverts_sent"]
    time.sleep(0.5)  # advert_interval is 100 ms: the child keeps sending, status asks it each time
    assert status(pair.sock)["vrrp"]["instances"]["VI_1"]["adverts_sent"] >= first + 3
    assert has_vip(pair.lab, pair.ns)


def test_the_child_runs_real_time_and_its_hooks_do_not(tmp_path: Path) -> None:
    hook, seen = tmp_path / "hook.sh", tmp_path / "hook.out"
    hook.write_text(f"#!/bin/sh\nchrt -p $$ >> {seen}\n")
    hook.chmod(0o755)
    with Lab("dvr-") as lab:
        _, _, daemon = start_daemon(lab, tmp_path, lambda text: text + f'notify = ["{hook}"]\n')
        wait_for(lambda: seen.exists() and "SCHED" in seen.read_text(), 30, what="the notify hook")
        [child] = children(daemon.pid)
        # vrrp_realtime_priority = 1 by default; hooks it starts are reset to normal scheduling
        assert os.sched_getscheduler(child) & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR
        assert os.sched_getparam(child).sched_priority == 1
        assert "SCHED_OTHER" in seen.read_text() and "SCHED_RR" not in seen.read_text()
        limits = Path(f"/proc/{child}/limits").read_text().split("Max realtime timeout")[1].split()
        assert limits[:2] == ["500000", "500000"]  # a runaway real-time loop dies after 0.5 s of CPU


def test_without_real_time_the_child_is_niced(tmp_path: Path) -> None:
    with Lab("dvn-") as lab:
        _, _, daemon = start_daemon(lab, tmp_path, lambda text: text.replace(
            "[global]", "[global]\nvrrp_realtime_priority = 0"))
        wait_for(lambda: len(children(daemon.pid)) == 1, 30, what="the VRRP child")
        [child] = children(daemon.pid)
        wait_for(lambda: os.getpriority(os.PRIO_PROCESS, child) == -10, 10, what="the child to renice")
        assert os.sched_getscheduler(child) == os.SCHED_OTHER


def test_parent_killed_alone_the_child_hands_over_and_exits(pair: Pair) -> None:
    child = pair.child
    pair.daemon.send_signal(signal.SIGKILL)
    pair.daemon.wait(10)
    wait_for(lambda: not alive(child), 10, what="the VRRP child to exit after its parent died")
    assert not has_vip(pair.lab, pair.ns)  # graceful: VIP removed (and priority 0 sent)
    assert "vrrp transition" in pair.log.read_text() and " new=init " in pair.log.read_text()


def test_child_killed_the_daemon_removes_its_vips_and_fails(pair: Pair) -> None:
    os.kill(pair.child, signal.SIGKILL)
    assert pair.daemon.wait(15) == 2
    assert not has_vip(pair.lab, pair.ns)
    text = pair.log.read_text()
    assert "killed by SIGKILL" in text and "removed a VIP the VRRP process left behind" in text


def test_sigterm_to_the_whole_group_stops_both_cleanly(pair: Pair) -> None:
    child = pair.child
    os.killpg(pair.daemon.pid, signal.SIGTERM)  # what systemd's KillMode=control-group does
    assert pair.daemon.wait(15) == 0
    assert not alive(child)
    assert not has_vip(pair.lab, pair.ns)


def test_a_restart_after_sigkill_removes_the_stale_vip(pair: Pair, tmp_path: Path) -> None:
    os.killpg(pair.daemon.pid, signal.SIGKILL)  # nothing gets to clean up
    pair.daemon.wait(10)
    assert has_vip(pair.lab, pair.ns)
    _, sock, again = start_daemon(pair.lab, tmp_path / "again", lambda text: text.replace(
        'advert_interval = "100ms"', 'advert_interval = "10s"'), ns=pair.ns)
    try:  # a 10 s advert interval keeps it backup for 30 s: the VIP must go at once
        wait_for(lambda: not has_vip(pair.lab, pair.ns), 15, what="the stale VIP to be removed")
        assert vrrp_state(sock) == "backup"
    finally:
        with_group_gone(again)
