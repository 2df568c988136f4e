"""The whole daemon (VRRP child, health checks, in-memory IPVS: tests.daemon.memory_daemon) in
network namespaces mails a real SMTP server (aiosmtpd, tests.smtp_sink) in the same namespace:
a VRRP transition, a real server going down when its listener stops and coming back. With the
mail server unreachable (a closed port) or hung (accepts, never answers) while real servers
flap, VRRP keeps its advert timing (the peer never takes over), health checks keep their
pace, and the failures and drops are counted."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from scripts.labkit import PYTHON, REPO, Lab, VrrpLab, wait_for
from tests.daemon.test_daemon_netns import directord
from tests.smtp_sink import read_maildir

pytestmark = pytest.mark.netns

SMTP_PORT, RS_PORT = 2525, 8080
# A real server: accepts and closes connections; with a period, it listens only every other period.
LISTENER = textwrap.dedent("""
    import socket, sys, time
    period = float(sys.argv[2]) if len(sys.argv) > 2 else 0
    while True:
        s = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=256)
        s.settimeout(0.02)
        until = time.monotonic() + (period or 1e9)
        while time.monotonic() < until:
            try:
                s.accept()[0].close()
            except TimeoutError:
                pass
        s.close()
        time.sleep(period)
""")


def config(tmp: Path, *, smtp: str, priority: int = 150, real_servers: int = 1, timeout: str = "2s") -> str:
    servers = "".join(f'\n  [[virtual_server.real_server]]\n  address = "127.0.0.{i + 1}"\n  port = {RS_PORT}\n'
                      for i in range(real_servers))
    return textwrap.dedent(f"""
        [global]
        router_id = "lb-ns"
        control_socket = "{tmp}/control.sock"
        state_dir = "{tmp}/state"
        metrics_listen = ""
        log_format = "json"
        notification_email = ["ops@example.com"]
        smtp_server = "{smtp}"
        smtp_connect_timeout = "{timeout}"
        smtp_alert = true

        [[vrrp_instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 51
        priority = {priority}
        advert_interval = "100ms"
        virtual_ips = ["192.0.2.100/24"]

        [[virtual_server]]
        name = "web"
        address = "192.0.2.100"
        port = 80
        quorum = 1
          [virtual_server.check]
          type = "tcp"
          interval = "100ms"
          timeout = "200ms"
          rise = 1
          fall = 1
        """) + servers


def start_daemon(lab: Lab, ns: str, tmp: Path, text: str) -> subprocess.Popen:
    path = tmp / "directord.toml"
    path.write_text(text)
    log = open(tmp / "daemon.log", "w")  # noqa: SIM115  (the lab owns the process; the file outlives this call)
    daemon = lab.start([PYTHON, "-m", "tests.daemon.memory_daemon", str(path)], ns=ns, cwd=REPO,
                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_for(lambda: (tmp / "control.sock").exists(), 60, what="the control socket")
    return daemon


def status(tmp: Path) -> dict:
    proc = directord("status", "--json", "--socket", str(tmp / "control.sock"))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def subjects(maildir: Path) -> list[str]:
    return [str(m["Subject"]) for m in read_maildir(maildir)] if (maildir / "new").exists() else []


def test_the_daemon_mails_a_vrrp_transition_and_a_real_server_down_and_back(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    with Lab("dml-") as lab:
        ns = lab.netns("a")
        lab.veth(ns, "eth0", "192.0.2.1/24")
        lab.start([PYTHON, "-m", "tests.smtp_sink", "--listen", f"127.0.0.1:{SMTP_PORT}", "--maildir", str(maildir)],
                  ns=ns, cwd=REPO)
        listener = lab.start([PYTHON, "-c", LISTENER, str(RS_PORT)], ns=ns)
        start_daemon(lab, ns, tmp_path, config(tmp_path, smtp=f"127.0.0.1:{SMTP_PORT}"))
        rs = "[lb-ns] Real server 127.0.0.1:8080 of virtual server web is"
        wait_for(lambda: "[lb-ns] VRRP instance VI_1 is now MASTER" in subjects(maildir), 30, what="the MASTER mail")
        wait_for(lambda: status(tmp_path)["virtual_servers"][0]["real_servers"][0]["health"] == "up", 10,
                 what="the real server up")
        listener.kill()
        listener.wait()
        wait_for(lambda: f"{rs} DOWN" in subjects(maildir), 15, what="the DOWN mail")
        lab.start([PYTHON, "-c", LISTENER, str(RS_PORT)], ns=ns)
        wait_for(lambda: f"{rs} UP" in subjects(maildir), 15, what="the UP mail")
        mails = {str(m["Subject"]): m for m in read_maildir(maildir)}
        master = mails["[lb-ns] VRRP instance VI_1 is now MASTER"].get_content()
        assert "VRRP instance VI_1 changed from BACKUP to MASTER." in master and "(192.0.2.100/24)" in master
        assert "lb-ns (directord on " in master and " UTC:" in master
        down = mails[f"{rs} DOWN"].get_content()
        assert "Last tcp check: connection refused." in down and "0 of 1 real servers of web are up now." in down
        assert {"[lb-ns] Virtual server web lost quorum", "[lb-ns] Virtual server web regained quorum"} <= set(mails)
        mail = status(tmp_path)["mail"]
        assert mail["sent_total"] >= 5 and mail["failed_total"] == 0 and mail["dropped_total"] == 0


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_an_unreachable_or_hung_mail_server_costs_vrrp_and_checks_nothing(tmp_path: Path, server: str) -> None:
    lab = VrrpLab(2, tmp_path)
    try:
        n1, n2 = lab.nodes
        if server == "silent":  # the kernel completes the handshake; nobody ever answers
            lab.net.start([PYTHON, "-m", "tests.smtp_sink", "--silent", "--listen", f"127.0.0.1:{SMTP_PORT}"],
                          ns=n1, cwd=REPO)
        # 30 real servers behind one listener that comes and goes every 300 ms: a storm of alerts
        lab.net.start([PYTHON, "-c", LISTENER, str(RS_PORT), "0.3"], ns=n1)
        work = tmp_path / "n1"
        work.mkdir()
        start_daemon(lab.net, n1, work, config(work, smtp=f"127.0.0.1:{SMTP_PORT}", real_servers=30, timeout="1s"))
        lab.wait_master(n1, timeout=10)
        lab.start(n2, priority=100, advert_interval="100ms")
        lab.wait_backup(n2)
        first, began = status(work), time.monotonic()
        time.sleep(6)
        asked = time.monotonic()
        last = status(work)
        answered = time.monotonic() - asked
        elapsed = time.monotonic() - began
        log = lab.log(n2)
        assert "new=master" not in log, log[-2000:]  # the backup never took over
        assert lab.holders() == [n1]
        sent = last["vrrp"]["instances"]["VI_1"]["adverts_sent"] - first["vrrp"]["instances"]["VI_1"]["adverts_sent"]
        assert sent >= 0.9 * elapsed / 0.1, (sent, elapsed)  # an advert every 100 ms, none skipped
        assert answered < 1.0  # the daemon's loop answers at once, mail or not
        # health checks keep their pace: the flapping listener is seen going and coming throughout
        checks = sum(rs["checks_total"] for rs in last["virtual_servers"][0]["real_servers"] if rs["role"] == "real")
        before = sum(rs["checks_total"] for rs in first["virtual_servers"][0]["real_servers"] if rs["role"] == "real")
        assert checks - before >= 0.8 * 30 * elapsed / 0.1, (checks - before, elapsed)
        mail = last["mail"]
        assert mail["sent_total"] == 0 and mail["failed_total"] >= 1, mail
        reason = "connection refused" if server == "closed" else "timed out"
        assert mail["last_error"].startswith(reason), mail
        if server == "silent":  # one exchange a second against a storm: the queue overflows, counted
            assert mail["dropped_total"] >= 1 and mail["queued"] <= 101, mail
        daemon_log = (work / "daemon.log").read_text()
        assert daemon_log.count("alert mail failed; further failures are counted") == 1  # one line, not a flood
    finally:
        lab.close()
