"""`directord run` with only VRRP on this host: control socket, status, reload, failover,
and a second daemon refused (real processes in a network namespace)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.labkit import Lab, sh, wait_for

CONFIG = """
[global]
router_id = "t1"
control_socket = "{sock}"
state_dir = "{state}"
metrics_listen = ""

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 42
priority = 120
advert_interval = "100ms"
virtual_ips = ["192.0.2.50/24"]
"""


def directord(*args: str, ns: str | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "director.cli", *args]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def status(sock: Path) -> dict:
    proc = directord("status", "--json", "--socket", str(sock))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def vrrp_state(sock: Path) -> str | None:
    return status(sock)["vrrp"].get("instances", {}).get("VI_1", {}).get("state")


def start_daemon(lab: Lab, workdir: Path, edit: Callable[[str], str] = lambda text: text, ns: str | None = None,
                 log: Path | None = None, **popen: Any) -> tuple[str, Path, subprocess.Popen]:
    """`directord run` on CONFIG (after `edit`) kept in `workdir`, in namespace `ns` or a new one
    with eth0 192.0.2.1/24; output to `log` or nowhere. Returns the namespace, the control
    socket (once it exists) and the process."""
    if ns is None:
        ns = lab.netns("a")
        lab.veth(ns, "eth0", "192.0.2.1/24")
    workdir.mkdir(exist_ok=True)
    sock, config = workdir / "control.sock", workdir / "directord.toml"
    config.write_text(edit(CONFIG.format(sock=sock, state=workdir / "state")))
    with open(log or os.devnull, "w") as out:
        daemon = lab.start([sys.executable, "-m", "director.cli", "run", "-c", str(config)], ns=ns,
                           stdout=out, stderr=out, **popen)
    wait_for(lambda: sock.exists(), 90, what="the control socket")  # a TCG guest under load is slow
    return ns, sock, daemon


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Lab, Path, Path, subprocess.Popen]]:
    with Lab("dcs-") as lab:
        _, sock, daemon = start_daemon(lab, tmp_path, log=tmp_path / "daemon.log")
        yield lab, sock, tmp_path / "directord.toml", daemon


def test_status_reload_failover_and_a_second_daemon(running, tmp_path: Path) -> None:
    lab, sock, config, daemon = running
    ns = lab.name("a")
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    wait_for(lambda: vrrp_state(sock) == "master", 20, what="master")
    assert "192.0.2.50/24" in sh(["ip", "-o", "addr", "show", "dev", "eth0"], ns=ns)
    text = directord("status", "--socket", str(sock))
    assert text.returncode == 0 and "VI_1" in text.stdout and "MASTER" in text.stdout

    second = directord("run", "-c", str(config), ns=ns)
    assert second.returncode == 2
    assert second.stderr.strip() == f"directord run: another directord is running on {sock}"
    own_socket = tmp_path / "other.toml"  # its own socket, the same state_dir
    own_socket.write_text(config.read_text().replace(str(sock), str(tmp_path / "other.sock")))
    third = directord("run", "-c", str(own_socket), ns=ns)
    assert third.returncode == 2, third.stderr
    assert third.stderr.strip() == (f"directord run: {tmp_path / 'state'}: in use by another directord "
                                    "(a running daemon or apply)")
    assert not (tmp_path / "other.sock").exists()

    transitions = status(sock)["vrrp"]["instances"]["VI_1"]["transitions"]
    good = config.read_text()
    config.write_text(good.replace('router_id = "t1"', 'router_id = 5'))
    bad = directord("reload", "--socket", str(sock))
    assert bad.returncode == 2 and "config rejected" in bad.stderr and "global.router_id" in bad.stderr
    hook = tmp_path / "open" / "hook"  # in a directory anyone may write to
    hook.parent.mkdir()
    hook.parent.chmod(0o777)
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    config.write_text(good.replace('router_id = "t1"', 'router_id = "t1"\nscript_security = true').replace(
        'virtual_ips = ["192.0.2.50/24"]', f'virtual_ips = ["192.0.2.50/24"]\nnotify = "{hook}"'))
    unsafe = directord("reload", "--socket", str(sock))
    assert unsafe.returncode == 2 and f"{hook.parent} can be changed by a user other than root" in unsafe.stderr
    config.write_text(good.replace('router_id = "t1"', 'router_id = "t2"'))
    assert directord("reload", "--socket", str(sock)).returncode == 0
    assert status(sock)["router_id"] == "t2"
    assert status(sock)["vrrp"]["instances"]["VI_1"]["transitions"] == transitions  # the reload did not flap VRRP

    # A changed instance is reconfigured in place: the new VIP appears, the master stays master.
    config.write_text(config.read_text().replace('virtual_ips = ["192.0.2.50/24"]',
                                                 'virtual_ips = ["192.0.2.50/24", "192.0.2.51/24"]'))
    added = directord("reload", "--socket", str(sock))
    assert added.returncode == 0
    assert added.stdout.splitlines()[1:] == ["  change vrrp_instance VI_1: virtual_ips +192.0.2.51/24"], added.stdout
    wait_for(lambda: "192.0.2.51/24" in sh(["ip", "-o", "addr", "show", "dev", "eth0"], ns=ns), 10,
             what="the added VIP")
    assert vrrp_state(sock) == "master"

    alone = directord("failover", "VI_1", "--socket", str(sock))  # no backup ever heard: refused
    assert alone.returncode == 2 and "no other router has been heard on vrid 42" in alone.stderr, alone.stderr
    assert "pass --force" in alone.stderr and vrrp_state(sock) == "master"
    handed = directord("failover", "VI_1", "--force", "--socket", str(sock))
    assert handed.returncode == 0, handed.stderr
    assert status(sock)["vrrp"]["instances"]["VI_1"]["holding_back"] is True
    unknown = directord("failover", "VI_9", "--socket", str(sock))
    assert unknown.returncode == 2 and 'no VRRP instance is named "VI_9"' in unknown.stderr
    nothing = directord("drain", "10.9.9.9", "--socket", str(sock))
    assert nothing.returncode == 2 and "no configured real server matches 10.9.9.9" in nothing.stderr

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert "192.0.2.50" not in sh(["ip", "-o", "addr", "show", "dev", "eth0"], ns=ns)
    assert not sock.exists()


def test_reload_with_c_finds_the_socket_of_a_config_that_no_longer_validates(running) -> None:
    """ExecReload runs `reload -c FILE`: a broken file must still lead to the daemon's own
    (non-default) socket, so the daemon can refuse the file and keep running."""
    _, sock, config, _ = running
    good = config.read_text()
    config.write_text(good.replace('router_id = "t1"', 'router_id = 5'))
    for command in ("reload", "status"):
        proc = directord(command, "-c", str(config))
        assert "not running" not in proc.stderr, proc.stderr
    rejected = directord("reload", "-c", str(config))
    assert rejected.returncode == 2 and "config rejected" in rejected.stderr
    config.write_bytes(b"\xff\xfe[global]\n")
    unreadable = directord("reload", "-c", str(config))
    assert unreadable.returncode == 2
    assert unreadable.stderr.strip() == (f"directord reload: cannot read {config}: invalid TOML: not UTF-8 text "
                                         "(byte 0); pass --socket")
    config.write_text(good)
    assert directord("reload", "-c", str(config)).returncode == 0
    assert status(sock)["router_id"] == "t1"


@pytest.mark.parametrize(("interface", "reason"), [("eth9", "no interface 'eth9'"),
                                                   ("bare0", "bare0 has no usable address")])
def test_a_reload_the_vrrp_child_cannot_open_keeps_the_instance_in_both_processes(running, interface: str,
                                                                                 reason: str) -> None:
    """`interface` changed to a missing eth9 (issue 17's reproduction), or to a link
    without an address, which the child waits for: the parent's answer comes after the
    child's, so a refused reload means the child kept its instance. The master keeps its
    VIP, and re-applying the original config is a no-op, not a restart of a lost instance."""
    lab, sock, config, _ = running
    wait_for(lambda: vrrp_state(sock) == "master", 20, what="master")
    sh(["ip", "link", "add", "bare0", "type", "veth", "peer", "name", "bare1"], ns=lab.name("a"))
    sh(["ip", "link", "set", "bare0", "up"], ns=lab.name("a"))
    good = config.read_text()
    config.write_text(good.replace('interface = "eth0"', f'interface = "{interface}"'))
    rejected = directord("reload", "-c", str(config))
    assert rejected.returncode == 2 and reason in rejected.stderr, rejected.stderr
    time.sleep(0.5)
    assert vrrp_state(sock) == "master"
    assert "192.0.2.50/24" in sh(["ip", "-o", "addr", "show", "dev", "eth0"], ns=lab.name("a"))
    config.write_text(good)
    again = directord("reload", "-c", str(config))
    assert again.returncode == 0 and "0 VRRP changes" in again.stdout, again.stdout
    assert vrrp_state(sock) == "master"


@pytest.mark.parametrize("payload", [b"not json\n", b"[1, 2]\n", b'{"command": 7}\n', b'{"command": "nope"}\n',
                                     b"x" * 70000 + b"\n", b'{"command": "drain", "address": 5}\n',
                                     b"[" * 20000 + b"]" * 20000 + b"\n"])
def test_malformed_requests_get_an_error_and_the_daemon_keeps_answering(running, payload: bytes) -> None:
    _, sock, _, _ = running
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(sock))
        client.sendall(payload)
        reply = json.loads(client.makefile("rb").readline())
    assert reply["ok"] is False and reply["error"]
    assert status(sock)["router_id"] == "t1"


def test_cli_says_when_the_daemon_is_not_running(tmp_path: Path) -> None:
    proc = directord("status", "--socket", str(tmp_path / "none.sock"))
    assert proc.returncode == 2
    expected = f"directord status: directord is not running (no control socket at {tmp_path}/none.sock)"
    assert proc.stderr.strip() == expected


def test_failover_to_a_backup_once_heard_needs_no_force(tmp_path: Path) -> None:
    """b starts first and is master; a (higher priority) preempts it and so has heard it:
    a's failover needs no --force, b takes over, and a shows that it holds back."""
    from scripts.labkit import VrrpLab

    lab = VrrpLab(2, tmp_path)
    try:
        vip = 'virtual_ips = ["192.0.2.100/24"]'
        _, sock_b, _ = start_daemon(lab.net, tmp_path / "b", lambda text: text.replace(
            'virtual_ips = ["192.0.2.50/24"]', vip).replace("priority = 120", "priority = 100"), ns=lab.nodes[1])
        wait_for(lambda: vrrp_state(sock_b) == "master", 20, what="b master")
        _, sock_a, _ = start_daemon(lab.net, tmp_path / "a", lambda text: text.replace(
            'virtual_ips = ["192.0.2.50/24"]', vip), ns=lab.nodes[0])
        wait_for(lambda: vrrp_state(sock_a) == "master" and vrrp_state(sock_b) == "backup", 20, what="a preempts")
        assert status(sock_a)["vrrp"]["instances"]["VI_1"]["peer_heard"] == lab.addr(2)
        handed = directord("failover", "VI_1", "--socket", str(sock_a))
        assert handed.returncode == 0, handed.stderr
        wait_for(lambda: vrrp_state(sock_b) == "master", 20, what="b takes over")
        time.sleep(1)  # a would preempt straight back without the hold
        assert vrrp_state(sock_a) == "backup"
        assert status(sock_a)["vrrp"]["instances"]["VI_1"]["holding_back"] is True
        text = directord("status", "--socket", str(sock_a))
        assert "BACKUP (holding back)" in text.stdout, text.stdout
        released = directord("failover", "VI_1", "--release", "--socket", str(sock_a))
        assert released.returncode == 0 and "hold released" in released.stdout, released.stderr
        wait_for(lambda: vrrp_state(sock_a) == "master", 20, what="a preempts again")
        again = directord("failover", "VI_1", "--release", "--socket", str(sock_a))
        assert again.returncode == 2 and "no failover is in effect" in again.stderr
    finally:
        lab.close()


@pytest.mark.parametrize("obstacle", ["socket-dir-is-a-file", "dangling-symlink", "world-writable-dir"])
def test_run_that_cannot_start_says_one_line_and_leaves_no_vrrp_child(obstacle: str, tmp_path: Path) -> None:
    """The VRRP child is forked before the control socket is made: a start-up failure after
    the fork must reap it, not leave it holding raw sockets (and maybe the VIP)."""
    blocker = tmp_path / "blocker"
    if obstacle == "socket-dir-is-a-file":
        blocker.write_text("")
        sock = blocker / "control.sock"
        expected = f"directord run: cannot create the control socket {sock}: {blocker} is not a directory"
    elif obstacle == "world-writable-dir":  # e.g. control_socket under /tmp: anyone could swap it
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o1777)
        sock = shared / "control.sock"
        expected = (f"directord run: cannot create the control socket {sock}: {shared} is writable by group "
                    "or others (mode 1777)")
    else:
        sock = tmp_path / "control.sock"
        sock.symlink_to(tmp_path / "nowhere")
        expected = f"directord run: {sock} is a symbolic link; refusing to follow it (remove it)"
    assert_run_refused(tmp_path, sock, expected)


def assert_run_refused(tmp_path: Path, sock: Path, expected: str) -> None:
    """`run` with its control socket at `sock` exits 2 with exactly `expected`, leaving no
    process of its config (the forked VRRP child) and no VIP behind."""
    config = tmp_path / "directord.toml"
    config.write_text(CONFIG.format(sock=sock, state=tmp_path / "state"))
    with Lab("dcf-") as lab:
        ns = lab.netns("a")
        lab.veth(ns, "eth0", "192.0.2.1/24")
        proc = directord("run", "-c", str(config), ns=ns)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == expected
        left = subprocess.run(["pgrep", "-f", str(config)], capture_output=True, text=True)
        assert left.stdout == "", f"processes left behind: {left.stdout}"
        assert "192.0.2.50" not in sh(["ip", "-o", "addr", "show", "dev", "eth0"], ns=ns)


def test_run_without_root_says_what_it_needs_before_forking(tmp_path: Path) -> None:
    """Not root: one line naming the capabilities, before the VRRP child exists (not an EPERM
    from whichever socket opened first)."""
    readable = Path(tempfile.mkdtemp(prefix="directord-nr-"))  # pytest's tmp_path is root-only (0700)
    readable.chmod(0o755)
    config = readable / "directord.toml"
    config.write_text(CONFIG.format(sock=tmp_path / "control.sock", state=tmp_path / "state"))
    config.chmod(0o644)
    with Lab("dnr-") as lab, contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, readable)
        ns = lab.netns("a")
        lab.veth(ns, "eth0", "192.0.2.1/24")
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                sys.executable, "-m", "director.cli", "run", "-c", str(config)]
        proc = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == ("directord run: needs CAP_NET_ADMIN and CAP_NET_RAW "
                                       "(run it as root, as the systemd unit does)")
        assert "192.0.2.50" not in sh(["ip", "-o", "addr", "show", "dev", "eth0"], ns=ns)


def test_metrics_pass_promtool_and_are_scraped_by_prometheus(tmp_path: Path) -> None:
    with Lab("dcm-") as lab:
        ns, sock, _ = start_daemon(
            lab, tmp_path, lambda text: text.replace('metrics_listen = ""', 'metrics_listen = "127.0.0.1:9612"'))
        wait_for(lambda: vrrp_state(sock) == "master", 20, what="master")
        body = sh(["curl", "-sf", "http://127.0.0.1:9612/metrics"], ns=ns)
        assert 'directord_vrrp_state{vrrp_instance="VI_1",interface="eth0",vrid="42",state="master"} 1' in body
        assert "directord_vrrp_adverts_sent_total" in body
        lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr

        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n  - job_name: directord\n    static_configs: [{targets: ['127.0.0.1:9612']}]\n")
        lab.start(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                   f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--web.listen-address=127.0.0.1:9090"],
                  ns=ns, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        query = "http://127.0.0.1:9090/api/v1/query?query=directord_vrrp_state%7Bstate%3D%22master%22%7D"

        def scraped() -> bool:
            answer = sh(["curl", "-s", query], ns=ns, check=False)
            try:
                result = json.loads(answer)["data"]["result"]
            except (ValueError, KeyError):
                return False
            return bool(result) and result[0]["value"][1] == "1" and result[0]["metric"]["vrrp_instance"] == "VI_1"

        wait_for(scraped, 60, interval=0.5, what="Prometheus to scrape directord")


def test_daemon_notifies_systemd_ready_watchdog_reloading_stopping(tmp_path: Path) -> None:
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify, Lab("dcn-") as lab:
        notify.bind(notify_path)
        notify.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"}
        _, sock, daemon = start_daemon(lab, tmp_path, env=env)
        messages: list[bytes] = []

        def received(prefix: bytes) -> bool:
            while not any(m.startswith(prefix) for m in messages):
                messages.append(notify.recv(4096))
            return True

        assert received(b"READY=1\nSTATUS=")
        messages.clear()
        assert received(b"WATCHDOG=1")  # pinged at half of WATCHDOG_USEC
        messages.clear()
        assert directord("reload", "--socket", str(sock)).returncode == 0
        assert received(b"RELOADING=1\nMONOTONIC_USEC=") and received(b"READY=1")
        daemon.send_signal(signal.SIGTERM)
        assert received(b"STOPPING=1")
        assert daemon.wait(timeout=30) == 0
