"""Exec checks (real processes) and the none check."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from director.config.model import CHECK_TYPES, CheckConfig
from healthcheck import exec as exec_probe
from healthcheck import none, probes
from healthcheck.result import Target
from tests.healthcheck.conftest import run

T = Target("127.0.0.1", 8080)


def sh(script: str, **kw) -> CheckConfig:
    return CheckConfig(type="exec", command=("/bin/sh", "-c", script), **kw)


def test_exit_zero_is_up():
    result = run(exec_probe.probe(T, sh("exit 0")))
    assert result.ok and result.reason == "exit 0" and result.weight is None


def test_exit_one_is_down_with_first_line_of_output():
    result = run(exec_probe.probe(T, sh("echo 'backend says no'; echo more; exit 1")))
    assert not result.ok and result.reason == "exit 1: backend says no"


def test_environment_names_the_target():
    script = '[ "$DIRECTORD_ADDRESS" = 127.0.0.1 ] && [ "$DIRECTORD_PORT" = 8080 ] ' \
             '&& [ "$DIRECTORD_FAMILY" = 4 ]'
    assert run(exec_probe.probe(T, sh(script))).ok


def test_the_environment_is_a_fixed_minimum_not_the_daemons(monkeypatch):
    """NOTIFY_SOCKET would let a check speak to systemd for the daemon."""
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("SECRET_TOKEN", "x")
    names = sorted(exec_probe.environment(T))
    assert names == ["DIRECTORD_ADDRESS", "DIRECTORD_FAMILY", "DIRECTORD_PORT", "HOME", "LANG", "PATH"]
    assert run(exec_probe.probe(T, sh('[ -z "$NOTIFY_SOCKET$SECRET_TOKEN" ]'))).ok


def test_argv_is_not_a_shell_string():
    check = CheckConfig(type="exec", command=(sys.executable, "-c",
                        "import sys; sys.exit(0 if sys.argv[1] == '$HOME; rm' else 1)",
                        "$HOME; rm"))
    assert run(exec_probe.probe(T, check)).ok


def test_dynamic_weight():
    result = run(exec_probe.probe(T, sh("exit 12", dynamic_weight=True)))
    assert result.ok and result.weight == 10 and result.reason == "exit 12: weight 10"
    result = run(exec_probe.probe(T, sh("exit 1", dynamic_weight=True)))
    assert not result.ok and result.weight is None
    result = run(exec_probe.probe(T, sh("exit 12")))
    assert not result.ok and result.reason == "exit 12"


def test_killed_by_signal():
    result = run(exec_probe.probe(T, sh("kill -SEGV $$")))
    assert not result.ok and result.reason == "killed by SIGSEGV"


def test_missing_command():
    check = CheckConfig(type="exec", command=("/nonexistent/check",))
    result = run(exec_probe.probe(T, check))
    assert result.reason == "cannot run '/nonexistent/check': no such file or directory"
    assert run(exec_probe.probe(T, CheckConfig(type="exec"))).reason == "exec check has no command"


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_timeout_kills_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    script = f"sleep 30 & echo $! > {pids}; echo $$ >> {pids}; sleep 30"
    started = time.monotonic()
    result = run(exec_probe.probe(T, sh(script, timeout=0.5)))
    assert time.monotonic() - started < 0.6
    assert result.reason == "timeout after 0.5s waiting for command (process group killed)"
    wanted = [int(p) for p in pids.read_text().split()]
    assert len(wanted) == 2
    deadline = time.monotonic() + 2
    while not all(gone(p) for p in wanted) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(gone(p) for p in wanted), wanted


def test_stray_children_do_not_hold_the_check(tmp_path):
    started = time.monotonic()
    result = run(exec_probe.probe(T, sh("sleep 30 & exit 0", timeout=2.0)))
    assert result.ok and time.monotonic() - started < 1.0


def wait_gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 2
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return all(gone(p) for p in pids)


def test_timeout_kills_a_grandchild_that_left_the_group_with_setsid(tmp_path):
    pids = tmp_path / "pids"
    script = f"setsid sh -c 'echo $$ > {pids}; exec sleep 30' & sleep 30"
    result = run(exec_probe.probe(T, sh(script, timeout=0.5)))
    assert result.reason.startswith("timeout after 0.5s")
    assert wait_gone([int(pids.read_text())])


def test_a_setsid_grandchild_holding_stdout_after_exit_is_killed(tmp_path):
    pids = tmp_path / "pids"
    result = run(exec_probe.probe(T, sh(f"setsid sh -c 'echo $$ > {pids}; exec sleep 30' & sleep 0.2; exit 0",
                                        timeout=2.0)))
    assert result.ok
    assert wait_gone([int(pids.read_text())])


def test_a_grandchild_that_daemonized_on_purpose_is_left_alone(tmp_path):
    """setsid and no hold on the check's output: it outlives the check, as a daemon should."""
    pids = tmp_path / "pids"
    script = f"setsid sh -c 'echo $$ > {pids}; exec sleep 30' </dev/null >/dev/null 2>&1 & sleep 0.2; exit 0"
    assert run(exec_probe.probe(T, sh(script, timeout=2.0))).ok
    pid = int(pids.read_text())
    try:
        assert not gone(pid)
    finally:
        os.kill(pid, 9)


def test_flood_of_output_is_bounded():
    result = run(exec_probe.probe(T, sh("yes | head -c 20000000; exit 1", timeout=5.0)))
    assert not result.ok and result.reason == "exit 1: y"


def test_none_is_always_up():
    result = run(none.probe(T, CheckConfig(type="none")))
    assert result.ok and result.reason == "no check configured"


def test_dispatch():
    assert run(probes.probe(T, CheckConfig(type="none"))).ok
    bogus = CheckConfig(type="bogus")  # type: ignore[arg-type]
    assert run(probes.probe(T, bogus)).reason == "unknown check type 'bogus'"
    assert set(probes.PROBES) == set(CHECK_TYPES)  # every type the config offers has a probe


def test_exec_does_not_leak_fds():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        run(exec_probe.probe(T, sh("exit 1")))
    assert len(os.listdir("/proc/self/fd")) <= before + 1
