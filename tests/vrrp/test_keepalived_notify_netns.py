"""Notify hooks against keepalived's: one script, run by Debian's keepalived and by
directord in one virtual router, gets the same arguments from both for the same
transitions, so scripts written for keepalived run unchanged; a sync group's hooks and the
notify FIFO on a running director."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from pathlib import Path

from scripts.labkit import PYTHON, keepalived_conf, sh
from scripts.labkit import VrrpLab as Lab

SCRIPT = """#!/bin/sh
log=$1; shift
echo "$*" >> "$log"
"""


def hook(tmp: Path) -> Path:
    path = tmp / "notify.sh"
    path.write_text(SCRIPT)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def keepalived_with_hooks(lab: Lab, script: Path, log: Path, priority: int) -> str:
    conf = keepalived_conf(lab.addr(2), priority=priority, version=3, interval="0.1", peers=[])
    hooks = "\n".join([
        f'  notify "{script} {log}"',
        f'  notify_master "{script} {log} master-hook"',
        f'  notify_backup "{script} {log} backup-hook"',
        f'  notify_fault "{script} {log} fault-hook"',
        f'  notify_stop "{script} {log} stop-hook"',
    ])
    conf = conf.replace("global_defs {", "global_defs {\n  script_user root")
    return conf.replace("vrrp_instance VI_1 {", "vrrp_instance VI_1 {\n" + hooks, 1)


def directord_hooks(script: Path, log: Path) -> dict[str, object]:
    return {"notify": [str(script), str(log)], "notify_arguments": "keepalived",
            **{f"notify_{state}": [str(script), str(log), f"{state}-hook"]
               for state in ("master", "backup", "fault", "stop")}}


def expected(priority: int, states: list[str]) -> tuple[list[str], list[str]]:
    """The state hooks' lines and notify's, apart: keepalived starts both at once, so their
    lines may interleave (directord runs them one after the other)."""
    return [f"{state.lower()}-hook" for state in states], [f"INSTANCE VI_1 {state} {priority}" for state in states]


def split(path: Path) -> tuple[list[str], list[str]]:
    got = lines(path)
    return [x for x in got if x.endswith("-hook")], [x for x in got if not x.endswith("-hook")]


def settle(lab: Lab, path: Path, count: int) -> None:
    lab.wait_for(lambda: len(lines(path)) >= count, 10.0)


def test_the_same_script_gets_the_same_arguments_from_both(lab2: Lab) -> None:
    dd, ka = lab2.nodes
    script = hook(lab2.tmp)
    dd_log, ka_log = lab2.tmp / "dd-notify.log", lab2.tmp / "ka-notify.log"

    # keepalived (200) becomes master; directord (100) follows as backup.
    lab2.start_keepalived(ka, keepalived_with_hooks(lab2, script, ka_log, 200))
    lab2.wait_for(lambda: lab2.holders() == [ka], 10.0)
    lab2.start(dd, priority=100, **directord_hooks(script, dd_log))
    settle(lab2, dd_log, 2)

    # keepalived's link fails: it goes to fault, directord takes over; the link comes back:
    # keepalived is backup, then preempts, and directord is backup again.
    sh(["ip", "link", "set", "eth0", "down"], ns=ka)
    lab2.wait_for(lambda: lab2.holders() == [dd], 5.0)
    sh(["ip", "link", "set", "eth0", "up"], ns=ka)
    lab2.wait_for(lambda: lab2.holders() == [ka], 10.0)
    settle(lab2, dd_log, 6)

    # directord's link fails while it is backup: fault, then backup again.
    sh(["ip", "link", "set", "eth0", "down"], ns=dd)
    settle(lab2, dd_log, 8)
    sh(["ip", "link", "set", "eth0", "up"], ns=dd)
    settle(lab2, dd_log, 10)

    # both stop.
    lab2.signal(dd, signal.SIGTERM)
    lab2.procs[dd].wait(timeout=10)
    lab2.procs[ka].send_signal(signal.SIGTERM)
    lab2.procs[ka].wait(timeout=10)
    settle(lab2, dd_log, 12)

    assert split(ka_log) == expected(200, ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]), \
        lab2.all_logs()
    dd_states = ["BACKUP", "MASTER", "BACKUP", "FAULT", "BACKUP", "STOP"]
    assert split(dd_log) == expected(100, dd_states), lab2.all_logs()
    assert lines(dd_log) == [x for pair in zip(*expected(100, dd_states), strict=True) for x in pair]


def read_fifo(fd: int, buffer: bytearray) -> list[str]:
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 4096):
            buffer += chunk
    return buffer.decode().splitlines()


def test_a_sync_group_notifies_as_a_whole_and_every_change_reaches_the_fifo(lab2: Lab) -> None:
    """Two instances in one group on a director alone: the group's hooks run once per group
    state, the FIFO gets every instance's and the group's lines in keepalived's format."""
    dd, _ = lab2.nodes
    script, log, fifo = hook(lab2.tmp), lab2.tmp / "group.log", lab2.tmp / "notify.fifo"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    buffer = bytearray()
    second = {"name": "VI_2", "interface": "eth0", "vrid": 52, "priority": 100, "version": 3,
              "advert_interval": "100ms", "virtual_ips": ["192.0.2.101/24"], "sync_group": "G"}
    config = lab2.write_config(dd, sync_group="G", instances=[second])
    text = config.read_text().replace("[global]", f'[global]\nnotify_fifo = "{fifo}"', 1)
    text += (f'\n[[vrrp_sync_group]]\nname = "G"\nnotify = ["{script}", "{log}"]\n'
             f'notify_arguments = "keepalived"\nnotify_fault = ["{script}", "{log}", "fault-hook"]\n')
    config.write_text(text)
    try:
        lab2._run(dd, [PYTHON, "-m", "vrrp", "-c", str(config), "--log-level", "debug"])
        lab2.wait_for(lambda: len(read_fifo(reader, buffer)) >= 6, 10.0)
        sh(["ip", "link", "set", "eth0", "down"], ns=dd)
        lab2.wait_for(lambda: len(read_fifo(reader, buffer)) >= 9, 5.0)
        got = read_fifo(reader, buffer)
    finally:
        os.close(reader)
    instances = [f'INSTANCE "VI_{i}" {s} 100' for s in ("BACKUP", "MASTER", "FAULT") for i in (1, 2)]
    groups = [f'GROUP "G" {s} 0' for s in ("BACKUP", "MASTER", "FAULT")]
    assert sorted(got) == sorted(instances + groups), lab2.all_logs()
    # a group is master or backup once all its members are, in fault as soon as one is
    for state, last in (("BACKUP", max), ("MASTER", max), ("FAULT", min)):
        assert got.index(f'GROUP "G" {state} 0') > last(got.index(f'INSTANCE "VI_{i}" {state} 100') for i in (1, 2))
    lab2.wait_for(lambda: len(lines(log)) >= 4, 5.0)
    assert lines(log) == ["GROUP G BACKUP 0", "GROUP G MASTER 0", "fault-hook", "GROUP G FAULT 0"]
