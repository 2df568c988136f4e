"""`directord run` against a real kernel: health verdicts move kernel weights, quorum brings
the sorry server, SIGTERM leaves the table in place (runs in the VM rig)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from scripts.labkit import NAT_VIP, NatLab, fetch, wait_for
from tests.daemon.test_metrics import samples
from tests.kernel_util import ipvsadm, rules

CONFIG = f"""
[global]
reconcile_interval = "2s"
metrics_listen = ""

[[virtual_server]]
name = "web"
address = "{NAT_VIP}"
port = 80
scheduler = "rr"
method = "nat"
quorum = 2
sorry_server = "10.0.0.13:80"
on_failure = "quiesce"
  [virtual_server.check]
  type = "http"
  path = "/"
  interval = "1s"
  timeout = "1s"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  weight = 1
  [[virtual_server.real_server]]
  address = "10.0.0.12"
  weight = 1
"""


def weight_of(endpoint: str) -> int | None:
    for line in rules():
        parts = line.split()
        if "-r" in parts and parts[parts.index("-r") + 1] == endpoint:
            return int(parts[parts.index("-w") + 1])
    return None


METRICS = "127.0.0.1:9613"


def scrape() -> dict[str, float]:
    """/metrics as {sample with labels: value}, after promtool has passed it."""
    return samples(urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=30).read().decode())


def rs_metric(name: str, address: str) -> str:
    return f'directord_{name}{{virtual_server="web",address="{address}",port="80"}}'


def backend_metric(name: str, address: str) -> str:
    return (f'directord_ipvs_backend_{name}{{virtual_server="web",proto="tcp",local_address="{NAT_VIP}",'
            f'local_port="80",remote_address="{address}",remote_port="80"}}')


def test_health_drives_weights_and_sorry_server(nat_lab3: NatLab, tmp_path: Path) -> None:
    nat_lab3.stop_server(3)  # rs3 (10.0.0.13) only plays the sorry server; not needed running
    config = tmp_path / "directord.toml"
    config.write_text(CONFIG.replace('metrics_listen = ""', f'metrics_listen = "{METRICS}"'))
    log = tmp_path / "daemon.log"
    with open(log, "w") as stderr:
        daemon = subprocess.Popen([sys.executable, "-m", "director.cli", "run", "-c", str(config),
                                   "--state-dir", str(tmp_path / "state")], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for(lambda: weight_of("10.0.0.11:80") == 1 and weight_of("10.0.0.12:80") == 1, 120,
                 what="both real servers up in the kernel")
        assert weight_of("10.0.0.13:80") is None

        nat_lab3.stop_server(1)
        down_at = time.monotonic()
        wait_for(lambda: weight_of("10.0.0.11:80") == 0, 60, what="rs1 quiesced")
        print(f"rs1 quiesced {time.monotonic() - down_at:.1f}s after its server stopped (VM, emulated CPU)")
        wait_for(lambda: weight_of("10.0.0.13:80") == 1, 30, what="sorry server installed (quorum 2 lost)")
        assert fetch(nat_lab3.client, f"http://{NAT_VIP}/") in {"rs2", ""}  # the sorry server is down too
        # /metrics tells the same story as ipvsadm.
        got = scrape()
        assert got[rs_metric("real_server_up", "10.0.0.11")] == 0
        assert got[rs_metric("real_server_weight", "10.0.0.11")] == weight_of("10.0.0.11:80") == 0
        assert got[rs_metric("real_server_weight", "10.0.0.12")] == weight_of("10.0.0.12:80") == 1
        assert got[rs_metric("real_server_configured_weight", "10.0.0.11")] == 1
        assert got['directord_virtual_server_quorum_ok{virtual_server="web"}'] == 0
        assert backend_metric("connections_active", "10.0.0.13") in got  # the sorry server is in the table
        assert got[backend_metric("connections_total", "10.0.0.12")] >= 0
        failures = [k for k in got if k.startswith("directord_health_check_failures_total{address=\"10.0.0.11\"")]
        assert failures and all('reason="refused"' in k or 'reason="timeout"' in k for k in failures), failures

        nat_lab3.start_server(1)
        wait_for(lambda: weight_of("10.0.0.11:80") == 1, 60, what="rs1 back")
        wait_for(lambda: weight_of("10.0.0.13:80") is None, 30, what="sorry server removed")

        # `directord reload` returns once the kernel has the change, and says what it was.
        config.write_text(config.read_text().replace('address = "10.0.0.12"\n  weight = 1',
                                                     'address = "10.0.0.12"\n  weight = 3'))
        reload = subprocess.run([sys.executable, "-m", "director.cli", "reload", "-c", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert reload.returncode == 0, reload.stderr
        assert "1 IPVS change" in reload.stdout and "10.0.0.12:80" in reload.stdout, reload.stdout
        assert weight_of("10.0.0.12:80") == 3  # already in the kernel when reload returned

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
        # Stopping leaves the table in place: a restart drops nothing.
        assert weight_of("10.0.0.11:80") == 1 and weight_of("10.0.0.12:80") == 3
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        print(log.read_text()[-3000:], file=sys.stderr)


def test_restart_adopts_the_table_without_quiescing(nat_lab: NatLab, tmp_path: Path) -> None:
    config = tmp_path / "directord.toml"
    config.write_text(CONFIG.replace("quorum = 2\nsorry_server = \"10.0.0.13:80\"\n", "")
                      .replace("rise = 1", "rise = 3"))
    argv = [sys.executable, "-m", "director.cli", "run", "-c", str(config), "--state-dir", str(tmp_path / "s")]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: weight_of("10.0.0.11:80") == 1 and weight_of("10.0.0.12:80") == 1, 120,
             what="both real servers up in the first run")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    before = rules()
    log = tmp_path / "second.log"
    with open(log, "w") as stderr:
        second = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for(lambda: " info started " in log.read_text(), 120, what="the second run to start")
        # Its first pass runs at once; within the rise window (3 checks) nothing may be quiesced.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert rules() == before
            time.sleep(0.2)
    finally:
        os.kill(second.pid, signal.SIGTERM)
        second.wait(timeout=60)


def test_on_stop_remove_deletes_only_the_daemons_services(nat_lab: NatLab, tmp_path: Path) -> None:
    ipvsadm("-A", "-t", "203.0.113.9:443", "-s", "rr")  # made by hand: must survive
    config = tmp_path / "directord.toml"
    config.write_text(CONFIG.replace("quorum = 2\nsorry_server = \"10.0.0.13:80\"\n", "")
                      + '\n[ipvs]\non_stop = "remove"\n')
    daemon = subprocess.Popen([sys.executable, "-m", "director.cli", "run", "-c", str(config),
                               "--state-dir", str(tmp_path / "state")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: weight_of("10.0.0.11:80") == 1, 120, what="the daemon's service in the kernel")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
        table = ipvsadm("-Ln")
        assert "203.0.113.9:443" in table and f"{NAT_VIP}:80" not in table, table
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        ipvsadm("-D", "-t", "203.0.113.9:443")
