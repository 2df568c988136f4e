"""Which commands a state change runs, in keepalived's and directord's styles, and the
notify FIFO's lines and refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from director.config.model import VrrpInstanceConfig, VrrpSyncGroupConfig
from vrrp.notify import fifo_line, group_commands, group_state, instance_commands
from vrrp.notify_fifo import NotifyFifo

HOOKS = {"notify_master": ("/m",), "notify_backup": ("/b", "x"), "notify_fault": ("/f",), "notify_stop": ("/s",)}


def instance(**kw: object) -> VrrpInstanceConfig:
    return VrrpInstanceConfig("VI_1", "eth0", 51, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("state", "specific", "word"), [
    ("master", ["/m"], "MASTER"), ("backup", ["/b", "x"], "BACKUP"),
    ("fault", ["/f"], "FAULT"), ("init", ["/s"], "STOP"),
])
def test_the_state_hook_runs_first_then_notify_with_keepalived_arguments(state: str, specific: list[str],
                                                                         word: str) -> None:
    cfg = instance(notify=("/n", "--site", "a"), notify_arguments="keepalived", **HOOKS)
    assert instance_commands(cfg, state, 150) == [specific, ["/n", "--site", "a", "INSTANCE", "VI_1", word, "150"]]


def test_directord_arguments_and_no_hooks() -> None:
    assert instance_commands(instance(notify=("/n",)), "backup", 90) == [["/n", "VI_1", "backup", "90"]]
    assert instance_commands(instance(), "master", 90) == []
    assert instance_commands(instance(notify_master=("/m",)), "backup", 90) == []


def test_group_commands_and_state() -> None:
    group = VrrpSyncGroupConfig("G1", notify=("/g",), notify_arguments="keepalived", notify_fault=("/gf",))
    assert group_commands(group, "fault") == [["/gf"], ["/g", "GROUP", "G1", "FAULT", "0"]]
    assert group_commands(VrrpSyncGroupConfig("G1", notify=("/g",)), "master") == [["/g", "G1", "master"]]
    assert group_state(["master", "master"]) == "master"
    assert group_state(["backup", "fault", "master"]) == "fault"
    assert group_state(["backup", "master"]) is None  # on its way
    assert group_state(["init", "backup"]) is None
    assert group_state(["init", "init"]) is None  # a group does not stop


def test_fifo_lines_are_keepalived_s() -> None:
    assert fifo_line("INSTANCE", "VI_1", "master", 100) == b'INSTANCE "VI_1" MASTER 100\n'
    assert fifo_line("GROUP", "G1", "init", 0) == b'GROUP "G1" STOP 0\n'


def test_the_fifo_is_made_written_and_never_blocks(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.fifo")
    fifo = NotifyFifo()
    assert fifo.write(path, b"one\n")
    assert stat.S_ISFIFO(os.stat(path).st_mode) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(reader, 100) == b"one\n"
        line = b"x" * 4000 + b"\n"
        written = 0
        while fifo.write(path, line):  # nobody reads: the pipe fills, then lines are refused at once
            written += 1
            assert written < 1000
        assert written * len(line) <= 1 << 20
        assert os.read(reader, len(line)) == line  # whole lines only
    finally:
        os.close(reader)
        fifo.close()


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_path_that_is_not_a_fifo_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    path = tmp_path / "notify.fifo"
    if kind == "file":
        path = target
    else:
        os.mkfifo(tmp_path / "real.fifo")
        path.symlink_to(tmp_path / "real.fifo")
    fifo = NotifyFifo()
    assert not fifo.write(str(path), b"line\n")
    assert target.read_text() == "keep me"
