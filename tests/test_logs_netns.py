"""`directord run` under a journald-like stderr (JOURNAL_STREAM naming it): every line, the
VRRP child's too, carries its syslog priority, and a rejected reload is a `<3>` error line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.labkit import Lab, wait_for
from tests.daemon.test_daemon_netns import start_daemon


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def test_run_under_journald_prefixes_every_line_with_its_priority(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    log.touch()  # start_daemon opens it for writing: same inode, so JOURNAL_STREAM still names it
    st = log.stat()
    env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    with Lab("dlg-") as lab:
        _, _, daemon = start_daemon(lab, tmp_path / "run", log=log, env=env)
        # the VRRP child (forked by run) logs its transition through the same renderer
        wait_for(lambda: any("vrrp transition" in line and "new=master" in line for line in lines(log)), 30,
                 what="the child's MASTER transition")
        config = tmp_path / "run" / "directord.toml"
        config.write_text(config.read_text().replace("vrid = 42", "vrid = 999"))
        client = reload_under_journal(lab, config, tmp_path / "reload.log")  # what ExecReload runs
        wait_for(lambda: any("reload rejected" in line for line in lines(log)), 30, what="the rejected reload")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    text = lines(log)
    transition = next(line for line in text if "vrrp transition" in line and "new=master" in line)
    assert transition.startswith("<6>vrrp transition instance=VI_1 ")
    rejected = next(line for line in text if "reload rejected" in line)
    assert rejected.startswith("<3>reload rejected, keeping the running config problem=")
    assert "vrid" in rejected
    assert all(line[:3] in {"<2>", "<3>", "<4>", "<6>", "<7>"} for line in text), text
    # the client's error has a header and the reasons below it: every line is an err line
    assert client.returncode == 2 and len(client.lines) >= 2, client.lines
    assert all(line.startswith("<3>") for line in client.lines), client.lines
    assert any("vrid" in line for line in client.lines[1:]), client.lines


@dataclass
class Client:
    returncode: int
    lines: list[str]


def reload_under_journal(lab: Lab, config: Path, log: Path) -> Client:
    with open(log, "w") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.run(["ip", "netns", "exec", lab.name("a"), sys.executable, "-m", "director.cli", "reload",
                               "-c", str(config)], stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60)
    return Client(proc.returncode, lines(log))
