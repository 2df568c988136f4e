"""The CLI's contract on this host: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "directord.toml"


def directord(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "director.cli", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    proc = directord("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("directord ")


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_kernel_without_ipvs_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    if Path("/proc/net/ip_vs").exists():
        pytest.fail("this test describes a host kernel without IPVS; run it outside the VM rig")
    proc = directord(command, "-c", str(EXAMPLE), "--state-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"directord {command}: the kernel has no IPVS (ip_vs module not loaded or not built)"]


def test_config_error_exits_1_before_touching_the_kernel(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[virtual_server]]\nname = "x"\naddress = "192.0.2.1"\nport = 80\nscheduler = "nope"\n')
    proc = directord("apply", "-c", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith(f"{bad}:5: virtual_server \"x\".scheduler: \"nope\" is not one of")


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_check_config_and_run_both_refuse_an_empty_config(command: str, tmp_path: Path) -> None:
    """The unit's ExecStartPre (check-config) must not pass a file that run then refuses."""
    empty = tmp_path / "empty.toml"
    empty.write_text("[global]\n")
    proc = directord(command, "-c", str(empty))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"directord {command}: {empty}: nothing to run "
                                   "(no virtual_server or vrrp_instance tables)")


def test_check_config_counts_in_words(tmp_path: Path) -> None:
    one = tmp_path / "one.toml"
    one.write_text('[[virtual_server]]\nname = "web"\naddress = "192.0.2.1"\nport = 80\n'
                   '[virtual_server.check]\ntype = "none"\n'
                   '[[virtual_server.real_server]]\naddress = "192.0.2.10"\n')
    proc = directord("check-config", "--no-host-checks", "-c", str(one))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{one}: ok (1 virtual server, 1 real server, 0 VRRP instances)"


@pytest.mark.parametrize(("name", "text"), [
    ("bigint", "x = " + "9" * 5000 + "\n"),
    ("deep", "x = " + "[" * 5000 + "]" * 5000 + "\n"),
    ("dotted", "a" + ".a" * 50000 + " = 1\n"),
])
def test_pathological_toml_is_one_line_at_once(name: str, text: str, tmp_path: Path) -> None:
    bad = tmp_path / f"{name}.toml"
    bad.write_text(text)
    proc = directord("check-config", "-c", str(bad))
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith((f"{bad}: ", f"{bad}:1: "))
    assert "Traceback" not in proc.stderr


def test_an_oversized_config_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with open(big, "wb") as handle:
        handle.truncate(64 * 2**20)
    proc = directord("check-config", "-c", str(big))
    assert proc.returncode == 1 and proc.stderr.strip() == f"{big}: too large: a config is at most 16 MiB"


def test_probe_tells_an_invalid_config_from_a_server_down(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\x00")
    proc = directord("probe", "-c", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{bad}: invalid TOML: not UTF-8 text (byte 0)"


def test_unknown_command_is_a_usage_error() -> None:
    proc = directord("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_probe_prints_each_verdict_and_exits_1_when_one_is_down(tmp_path: Path) -> None:
    import json
    import socket

    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
        up_port, down_port = listener.getsockname()[1], closed.getsockname()[1]
        config = tmp_path / "probe.toml"
        config.write_text(
            '[[virtual_server]]\nname = "app"\naddress = "192.0.2.10"\nport = 80\n'
            '[virtual_server.check]\ntype = "tcp"\ntimeout = "500ms"\n'
            f'[[virtual_server.real_server]]\naddress = "127.0.0.1"\nport = {up_port}\n'
            f'[[virtual_server.real_server]]\naddress = "127.0.0.1"\nport = {down_port}\n')
        text = directord("probe", "-c", str(config))
        assert text.returncode == 1
        lines = text.stdout.splitlines()
        assert lines[0].split()[:2] == ["VIRTUAL", "SERVER"]
        assert lines[1].split()[:4] == ["app", f"127.0.0.1:{up_port}", "tcp", "up"]
        assert lines[2].split()[:4] == ["app", f"127.0.0.1:{down_port}", "tcp", "DOWN"]
        assert "connection refused" in lines[2] and lines[-1] == "1 up, 1 down"
        data = json.loads(directord("probe", "--json", "-c", str(config)).stdout)
        assert [r["up"] for r in data["results"]] == [True, False] and data["down"] == 1


def test_one_cause_one_error(tmp_path: Path) -> None:
    """A string port is one error, not also "check.port is required" for the real servers it left at 0."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[virtual_server]]\nname = "web"\naddress = "192.0.2.1"\nport = "80"\n'
                   '[virtual_server.check]\ntype = "http"\n[[virtual_server.real_server]]\naddress = "192.0.2.10"\n')
    proc = directord("check-config", "--no-host-checks", "-c", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f'{bad}:4: virtual_server "web".port: must be an integer, got a string']


def test_errors_carry_the_err_priority_under_journald(tmp_path: Path) -> None:
    """ExecStartPre/ExecReload output goes to the journal: `journalctl -p err` must find it."""
    import os

    bad = tmp_path / "bad.toml"
    bad.write_text("[global]\nrouter_id = 5\n")
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.run([sys.executable, "-m", "director.cli", "check-config", "-c", str(bad)],
                              stderr=err, stdout=subprocess.DEVNULL, env=env, timeout=60)
    assert proc.returncode == 1
    assert log.read_text().splitlines() == [f"<3>{bad}:2: global.router_id: must be a string, got an integer"]


INSECURE = """
[global]
script_security = {on}

[[vrrp_instance]]
name = "VI_1"
interface = "lo"
vrid = 1
virtual_ips = ["192.0.2.10/32"]
notify = "{hook}"
"""


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_script_security_refuses_a_root_program_others_can_change(command: str, tmp_path: Path) -> None:
    """keepalived's enable_script_security: on, check-config and run refuse the config; off,
    check-config warns."""
    hook = tmp_path / "open" / "hook"
    hook.parent.mkdir()
    hook.parent.chmod(0o777)
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    config = tmp_path / "d.toml"
    config.write_text(INSECURE.format(on="true", hook=hook))
    proc = directord(command, "-c", str(config))
    expected = (f'vrrp_instance "VI_1".notify: {hook} runs as root but {hook.parent} can be changed by a user '
                "other than root")
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
    if command == "check-config":
        config.write_text(INSECURE.format(on="false", hook=hook))
        warned = directord(command, "-c", str(config), "--no-host-checks")
        assert warned.returncode == 0 and "can be changed" not in warned.stderr  # a host check
        warned = directord(command, "-c", str(config))
        assert f"warning: {expected}" in warned.stderr.replace(f"{config}:11: ", ""), warned.stderr
