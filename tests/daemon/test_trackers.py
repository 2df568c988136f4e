"""Tracked scripts and files in the daemon: real runs of real programs, real files, a fake VRRP child."""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import structlog

from director.config.load import parse_config
from director.daemon.metrics import tracker_families
from director.daemon.script_run import MAX_OUTPUT, account, run_script
from director.daemon.status import ReconcileCounters, daemon_status, format_status
from director.daemon.trackers import Trackers, init_file
from director.daemon.vrrp_channel import SetTrackedFile, SetTrackedProcess, SetTrackedScript, decode, encode
from tests.daemon.test_metrics import samples

PY = sys.executable


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- one run ------------------------------------------------------------------------------------------


def test_exit_status_decides_and_the_first_line_explains() -> None:
    assert run(run_script(("/bin/true",), 5)).ok
    failed = run(run_script(("/bin/sh", "-c", "echo 'haproxy is down'; echo more; exit 3"), 5))
    assert (failed.ok, failed.code, failed.reason) == (False, 3, "exit 3: haproxy is down")
    killed = run(run_script(("/bin/sh", "-c", "kill -9 $$"), 5))
    assert (killed.ok, killed.reason) == (False, "killed by SIGKILL")


def test_a_program_that_cannot_start_is_a_failed_run() -> None:
    missing = run(run_script(("/nonexistent/check",), 5))
    assert (missing.ok, missing.code) == (False, None)
    assert missing.reason == "cannot run '/nonexistent/check': no such file or directory"


def test_a_hung_script_and_what_it_started_are_killed_at_the_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # a child that leaves the session (setsid) and one that stays, both holding on
    script = f"setsid sleep 60 & echo $! > {pids}; sleep 60 & echo $! >> {pids}; sleep 60"
    started = time.monotonic()
    result = run(run_script(("/bin/sh", "-c", script), 0.5))
    assert time.monotonic() - started < 3
    assert (result.ok, result.code) == (False, None)
    assert result.reason.startswith("timeout after 0.5s")
    time.sleep(0.2)
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), pid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_flood_of_output_is_drained_and_only_the_first_kib_kept() -> None:
    flood = "import sys\nfor _ in range(20000): sys.stdout.write('x' * 1023 + '\\n')\nsys.exit(1)"
    started = time.monotonic()
    result = run(run_script((PY, "-c", flood), 20))  # 20 MiB through the pipe
    assert time.monotonic() - started < 10
    assert (result.ok, result.code) == (False, 1)
    assert result.reason == "exit 1: " + "x" * 200  # the first line, cut for the reason
    assert MAX_OUTPUT == 4096


def test_the_environment_is_the_hook_minimum() -> None:
    os.environ["DIRECTORD_TEST_SECRET"] = "x"
    try:
        result = run(run_script(("/bin/sh", "-c", 'echo "$PATH|$HOME|${DIRECTORD_TEST_SECRET:-none}"; exit 1'), 5))
    finally:
        del os.environ["DIRECTORD_TEST_SECRET"]
    assert result.reason == "exit 1: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/|none"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_a_script_runs_as_its_user_without_roots_groups() -> None:
    nobody = pwd.getpwnam("nobody")
    who = account("nobody", None)
    assert who is not None and (who.uid, who.gid) == (nobody.pw_uid, nobody.pw_gid)
    result = run(run_script(("/bin/sh", "-c", "echo $(id -u) $(id -G); exit 1"), 5, who))
    uid, *groups = result.reason.removeprefix("exit 1: ").split()
    assert int(uid) == nobody.pw_uid
    assert 0 not in map(int, groups)  # root's supplementary groups are not inherited


def test_an_unknown_user_or_group_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no user named 'no-such-user-x' on this host"):
        account("no-such-user-x", None)
    with pytest.raises(LookupError, match="no group named 'no-such-group-x' on this host"):
        account("root", "no-such-group-x")


# --- the trackers ----------------------------------------------------------------------------------------

CONFIG = """
[[vrrp_script]]
name = "chk"
command = ["/usr/bin/test", "-e", "{flag}"]
interval = "50ms"
weight = -30
fall = 2

[[vrrp_script]]
name = "gate"
command = ["/bin/false"]
interval = "50ms"
init_fail = true

[[vrrp_script]]
name = "unused"
command = ["/bin/sh", "-c", "touch {ran}"]
interval = "50ms"

[[track_file]]
name = "prio"
path = "{prio}"
interval = "50ms"
weight = 10

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 1
virtual_ips = ["192.0.2.10/24"]
track_scripts = ["chk", "gate"]
track_files = ["prio"]

[[vrrp_instance]]
name = "VI_2"
interface = "eth0"
vrid = 2
virtual_ips = ["192.0.2.11/24"]
track_scripts = [{{ name = "chk", weight = 25 }}]
"""


def config(tmp_path: Path, **edit: str) -> Any:
    text = CONFIG.format(flag=tmp_path / "flag", ran=tmp_path / "ran", prio=tmp_path / "prio")
    for old, new in edit.items():
        text = text.replace(old, new)
    return parse_config(tomllib.loads(text))


async def until(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def test_changes_go_to_vrrp_once_each_and_status_shows_the_weights(tmp_path: Path) -> None:
    (tmp_path / "flag").touch()
    (tmp_path / "prio").write_text("3\n")
    sent: list[Any] = []

    async def scenario() -> None:
        trackers = Trackers(send=sent.append)
        trackers.start(config(tmp_path))
        # the file is read at once, init_fail is known at once: both go out before any script has run
        assert sent == [SetTrackedScript("gate", False), SetTrackedFile("prio", 3)]
        await until(lambda: SetTrackedScript("chk", True) in sent)
        (tmp_path / "prio").write_text("-2")
        await until(lambda: SetTrackedFile("prio", -2) in sent)
        (tmp_path / "flag").unlink()
        await until(lambda: SetTrackedScript("chk", False) in sent)  # after fall = 2 failures
        entries = {t["name"]: t for t in trackers.status()}
        assert set(entries) == {"chk", "gate", "prio"}  # "unused" is tracked by no instance: never run
        chk = entries["chk"]
        assert (chk["state"], chk["ok"], chk["last_result"]) == ("failed", False, "exit 1")
        assert chk["runs_total"] >= 3 and chk["failures_total"] >= 2
        assert chk["instances"] == [{"instance": "VI_1", "weight": -30, "shift": -30, "fault": False},
                                    {"instance": "VI_2", "weight": 25, "shift": 0, "fault": False}]
        assert entries["gate"]["instances"] == [{"instance": "VI_1", "weight": 0, "shift": 0, "fault": True}]
        assert entries["prio"]["instances"] == [{"instance": "VI_1", "weight": 10, "shift": -20, "fault": False}]
        snapshot = daemon_status(trackers.config, started=1.0, reloaded=None, vrrp={}, reconcile=ReconcileCounters(),
                                 services=[], trackers=trackers.status())
        text = format_status(snapshot)
        assert "TRACKED" in text
        row = next(line.split() for line in text.splitlines() if line.split()[:2] == ["chk", "script"])
        assert row[2:3] == ["FAILED"] and row[4:8] == ["VI_1", "-30,", "VI_2", "+0"]
        gate = next(line for line in text.splitlines() if line.split()[:2] == ["gate", "script"])
        assert "VI_1 FAULT" in gate
        assert snapshot["trackers"][0]["last_run_at_iso"] is not None
        body = "".join(chunk for family in tracker_families(trackers.status()) for chunk in family.render())
        got = samples(body)  # promtool passes it
        assert got['directord_track_script_state{tracker="chk",state="failed"}'] == 1
        assert got['directord_track_script_state{tracker="chk",state="ok"}'] == 0
        assert got['directord_track_file_value{tracker="prio"}'] == -2
        assert got['directord_vrrp_track_priority_shift{vrrp_instance="VI_1",tracker="chk",kind="script"}'] == -30
        assert got['directord_vrrp_track_fault{vrrp_instance="VI_1",tracker="gate",kind="script"}'] == 1
        await trackers.close()

    run(scenario())
    assert not (tmp_path / "ran").exists()
    changes = [m for m in sent if isinstance(m, SetTrackedScript) and m.name == "chk"]
    assert changes == [SetTrackedScript("chk", True), SetTrackedScript("chk", False)]  # transitions, not samples


def test_a_reload_keeps_unchanged_trackers_and_restarts_changed_ones(tmp_path: Path) -> None:
    (tmp_path / "flag").touch()
    sent: list[Any] = []

    async def scenario() -> None:
        trackers = Trackers(send=sent.append)
        trackers.start(config(tmp_path))
        await until(lambda: SetTrackedScript("chk", True) in sent)
        chk_task = trackers.scripts["chk"].task
        trackers.reload(config(tmp_path, **{"/bin/false": "/bin/true"}))  # "gate" changed, "chk" did not
        assert trackers.scripts["chk"].task is chk_task
        await until(lambda: SetTrackedScript("gate", True) in sent)
        trackers.reload(config(tmp_path, **{'track_files = ["prio"]': ""}))  # nothing tracks the file now
        assert "prio" not in trackers.files
        await trackers.close()

    run(scenario())


def test_a_file_reads_as_keepalived_reads_it(tmp_path: Path) -> None:
    sent: list[Any] = []
    prio = tmp_path / "prio"

    async def scenario() -> None:
        trackers = Trackers(send=sent.append)
        trackers.start(config(tmp_path, **{'track_scripts = ["chk", "gate"]': ""}))
        assert sent[0] == SetTrackedFile("prio", 0)  # missing: 0
        assert "no such file or directory" in trackers.files["prio"].reason
        for content, value in ((b"0x10", 16), (b"999", 254), (b"-999", -254), (b"junk", 0), (b"7", 7)):
            prio.write_bytes(content)
            await until(lambda value=value: trackers.files["prio"].value == value)
        prio.unlink()
        os.mkfifo(prio)  # a FIFO with no writer must not hold the daemon
        await until(lambda: trackers.files["prio"].value == 0)
        prio.unlink()
        prio.symlink_to("/dev/zero")  # endless content: 127 bytes are read
        await asyncio.sleep(0.2)
        assert trackers.files["prio"].value == 0 and trackers.files["prio"].reads >= 3
        await trackers.close()

    run(scenario())
    assert [m.value for m in sent if isinstance(m, SetTrackedFile)] == [0, 16, 254, -254, 0, 7, 0]


def test_a_script_whose_user_is_unknown_fails_every_run_and_says_why(tmp_path: Path) -> None:
    sent: list[Any] = []

    async def scenario() -> None:
        trackers = Trackers(send=sent.append)
        trackers.start(config(tmp_path, **{'weight = -30': 'weight = -30\nuser = "no-such-user-x"'}))
        await until(lambda: SetTrackedScript("chk", False) in sent)
        assert trackers.scripts["chk"].last.reason == "no user named 'no-such-user-x' on this host"
        await trackers.close()

    run(scenario())


def test_a_slow_script_skips_the_turns_it_overran(tmp_path: Path) -> None:
    slow = parse_config(tomllib.loads("""
[[vrrp_script]]
name = "slow"
command = ["/bin/sleep", "0.17"]
interval = "50ms"
timeout = "1s"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 1
virtual_ips = ["192.0.2.10/24"]
track_scripts = ["slow"]
"""))

    async def scenario() -> None:
        trackers = Trackers(send=lambda message: None)
        trackers.start(slow)
        await until(lambda: trackers.scripts["slow"].runs >= 2, 5)
        assert trackers.scripts["slow"].skipped >= 3  # each 170 ms run overruns three 50 ms turns
        await trackers.close()

    run(scenario())


def test_the_channel_carries_the_tracker_messages() -> None:
    for message in (SetTrackedScript("chk", True), SetTrackedFile("prio", -254)):
        frame = encode(message)
        assert decode(frame[4:], (SetTrackedScript, SetTrackedFile)) == message


# --- processes ------------------------------------------------------------------------------------------

SLEEP_ARG = "4321.125"  # a sleep nothing else on the host runs


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["/bin/sleep", SLEEP_ARG])


def test_proc_scan_counts_by_name_and_by_argv_and_skips_zombies() -> None:
    from director.daemon.proc_scan import count
    from healthcheck.tracked import ProcessMatch

    by_args = ProcessMatch("/bin/sleep", (SLEEP_ARG,))
    by_name = ProcessMatch("sleep")
    before = count([by_args, by_name])
    procs = [sleeper(), sleeper()]
    try:
        assert count([by_args, by_name]) == [before[0] + 2, before[1] + 2]
        procs[0].kill()
        time.sleep(0.1)  # a zombie now: not reaped yet, and not counted
        assert Path(f"/proc/{procs[0].pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        assert count([by_args])[0] == before[0] + 1
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


PROCESS_CONFIG = """
[[track_process]]
name = "sleepers"
process = "/bin/sleep"
args = ["{arg}"]
quorum = 2
weight = -40
interval = "50ms"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 1
virtual_ips = ["192.0.2.10/24"]
track_processes = ["sleepers"]
"""


def test_a_process_count_gains_and_loses_quorum(tmp_path: Path) -> None:
    sent: list[Any] = []
    procs = [sleeper()]

    async def scenario() -> None:
        trackers = Trackers(send=sent.append)
        trackers.start(parse_config(tomllib.loads(PROCESS_CONFIG.format(arg=SLEEP_ARG))))
        await until(lambda: sent == [SetTrackedProcess("sleepers", False)])  # 1 of 2
        procs.append(sleeper())
        await until(lambda: SetTrackedProcess("sleepers", True) in sent)
        [entry] = trackers.status()
        assert (entry["kind"], entry["state"], entry["count"], entry["quorum"]) == ("process", "ok", 2, 2)
        assert entry["instances"] == [{"instance": "VI_1", "weight": -40, "shift": 0, "fault": False}]
        body = "".join(chunk for family in tracker_families(trackers.status()) for chunk in family.render())
        got = samples(body)
        assert got['directord_track_process_running{tracker="sleepers"}'] == 2
        assert got['directord_track_process_quorum_ok{tracker="sleepers"}'] == 1
        procs.pop().kill()
        await until(lambda: sent[-1] == SetTrackedProcess("sleepers", False))
        assert trackers.status()[0]["instances"][0]["shift"] == -40
        await trackers.close()

    try:
        run(scenario())
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_init_file_writes_a_missing_file_and_overwrites_only_when_told(tmp_path: Path) -> None:
    """keepalived's init_file: the value goes into a missing file as tracking starts (so the
    first read sees it), an existing file keeps its value unless init_overwrite, and the write
    never follows a symbolic link nor opens anything but a regular file."""
    prio = tmp_path / "prio"
    sent: list[Any] = []

    async def scenario(cfg: Any) -> None:
        trackers = Trackers(send=sent.append)
        trackers.start(cfg)
        await trackers.close()

    base = {'track_scripts = ["chk", "gate"]': "", 'weight = 10\n': 'weight = 10\ninit_file = 7\n'}
    run(scenario(config(tmp_path, **base)))
    assert prio.read_text() == "7\n" and sent[-1] == SetTrackedFile("prio", 7)
    prio.write_text("3\n")
    run(scenario(config(tmp_path, **base)))
    assert prio.read_text() == "3\n" and sent[-1] == SetTrackedFile("prio", 3)  # there already: it stands
    overwrite = base | {'weight = 10\n': 'weight = 10\ninit_file = -4\ninit_overwrite = true\n'}
    run(scenario(config(tmp_path, **overwrite)))
    assert prio.read_text() == "-4\n" and sent[-1] == SetTrackedFile("prio", -4)

    target = tmp_path / "target"
    target.write_text("1\n")
    prio.unlink()
    prio.symlink_to(target)
    with structlog.testing.capture_logs() as logs:
        assert not init_file(config(tmp_path, **overwrite).track_files[0])
    assert target.read_text() == "1\n" and logs[0]["event"] == "track file not initialised"
    prio.unlink()
    os.mkfifo(prio)
    with structlog.testing.capture_logs() as logs:
        assert not init_file(config(tmp_path, **overwrite).track_files[0])  # no reader: never waits
    assert logs[0]["event"] == "track file not initialised"
