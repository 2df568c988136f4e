"""`directord apply` against a real IPVS kernel, cross-checked with ipvsadm (runs in the VM rig)."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel_util import apply_json, directord, ipvsadm, rules

# Every scheduler the config accepts; twos only exists from Linux 6.2 on.
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh")

FEATURES = """
[ipvs]
timeouts = { tcp = "600s", tcpfin = "100s", udp = "200s" }
expire_nodest_conn = true
expire_quiescent_template = true

[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
scheduler = "wlc"
method = "nat"
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  weight = 10
  [[virtual_server.real_server]]
  address = "10.0.0.12"
  weight = 0
  method = "dr"
  upper_threshold = 100
  lower_threshold = 50

[[virtual_server]]
name = "v6"
address = "2001:db8::10"
port = 443
scheduler = "sh"
scheduler_flags = ["sh-fallback", "sh-port"]
method = "dr"
persistence_timeout = "300s"
persistence_netmask = 64
  [[virtual_server.real_server]]
  address = "2001:db8::11"
  weight = 65535

[[virtual_server]]
name = "dns"
address = "192.0.2.53"
port = 53
protocol = "udp"
scheduler = "rr"
one_packet = true
  [[virtual_server.real_server]]
  address = "10.0.0.53"

[[virtual_server]]
name = "mark6"
fwmark = 10
family = "ipv6"
scheduler = "mh"
scheduler_flags = ["mh-port", "mh-fallback"]
method = "tun"
  [[virtual_server.real_server]]
  address = "2001:db8::21"
  tunnel_type = "gue"
  tunnel_port = 6080
  [[virtual_server.real_server]]
  address = "2001:db8::22"
  tunnel_type = "gre"
  tunnel_checksum = "csum"

[[virtual_server]]
name = "sctp"
address = "192.0.2.20"
port = 9000
protocol = "sctp"
scheduler = "rr"
method = "tun"
persistence_timeout = "60s"
persistence_netmask = 24
  [[virtual_server.real_server]]
  address = "10.0.0.20"

[[virtual_server]]
name = "mark4"
fwmark = 11
scheduler = "lblcr"
method = "dr"
  [[virtual_server.real_server]]
  address = "10.0.0.21"
  port = 0
"""

EXPECTED_RULES = {
    "-A -t 192.0.2.10:80 -s wlc",
    "-a -t 192.0.2.10:80 -r 10.0.0.11:80 -m -w 10",
    "-a -t 192.0.2.10:80 -r 10.0.0.12:80 -g -w 0",
    "-A -t [2001:db8::10]:443 -s sh -p 300 -M 64 -b sh-fallback,sh-port",
    "-a -t [2001:db8::10]:443 -r [2001:db8::11]:443 -g -w 65535",
    "-A -u 192.0.2.53:53 -s rr -o",
    "-a -u 192.0.2.53:53 -r 10.0.0.53:53 -m -w 1",
    "-A -f 10 -6 -s mh -b mh-fallback,mh-port",
    "-a -f 10 -6 -r [2001:db8::21]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
    "-a -f 10 -6 -r [2001:db8::22]:0 -i -w 1 --tun-type gre --tun-csum",
    "-A --sctp-service 192.0.2.20:9000 -s rr -p 60 -M 255.255.255.0",
    "-a --sctp-service 192.0.2.20:9000 -r 10.0.0.20:9000 -i -w 1 --tun-type ipip",
    "-A -f 11 -s lblcr",
    "-a -f 11 -r 10.0.0.21:0 -g -w 1",
}


def reset_kernel() -> None:
    """Empty table, default timeouts and sysctls (the VM is throwaway; directord itself never flushes)."""
    ipvsadm("-C")
    ipvsadm("--set", "900", "120", "300")
    for name in ("expire_nodest_conn", "expire_quiescent_template"):
        Path(f"/proc/sys/net/ipv4/vs/{name}").write_text("0\n")


@pytest.fixture
def clean_table() -> Iterator[None]:
    reset_kernel()
    yield
    reset_kernel()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "directord.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_apply_programs_every_feature_then_changes_nothing(tmp_path: Path, clean_table: None) -> None:
    config = write(tmp_path, FEATURES)
    first = apply_json(config, tmp_path / "state")
    assert first["returncode"] == 0, first
    assert rules() == EXPECTED_RULES
    thresholds = ipvsadm("-Ln", "--thresholds")
    assert any(line.split()[:3] == ["->", "10.0.0.12:80", "100"] and line.split()[3] == "50"
               for line in thresholds.splitlines()), thresholds
    assert "Timeout (tcp tcpfin udp): 600 100 200" in ipvsadm("-L", "--timeout")
    assert "persistent 300 mask 64" in ipvsadm("-Ln", "--persistent-conn")
    for name in ("expire_nodest_conn", "expire_quiescent_template"):
        assert Path(f"/proc/sys/net/ipv4/vs/{name}").read_text().strip() == "1"

    second = apply_json(config, tmp_path / "state")
    assert second["changes"] == [] and second["returncode"] == 0
    diff = directord("diff", "--state-dir", str(tmp_path / "state"), config=config)
    assert diff.returncode == 0 and diff.stdout.startswith("no changes"), diff.stdout


def test_hand_made_service_survives_and_tampering_is_repaired(tmp_path: Path, clean_table: None) -> None:
    config = write(tmp_path, FEATURES)
    ipvsadm("-A", "-t", "198.51.100.99:8080", "-s", "rr")
    ipvsadm("-a", "-t", "198.51.100.99:8080", "-r", "10.9.9.9:8080", "-m")
    apply_json(config, tmp_path / "state")
    ipvsadm("-d", "-t", "192.0.2.10:80", "-r", "10.0.0.11:80")
    ipvsadm("-e", "-t", "[2001:db8::10]:443", "-r", "[2001:db8::11]:443", "-g", "-w", "7")
    ipvsadm("-E", "-f", "11", "-s", "rr")
    ipvsadm("-D", "-u", "192.0.2.53:53")
    repaired = apply_json(config, tmp_path / "state")
    described = sorted(c["action"] + " " + c["entry"] for c in repaired["changes"])
    assert described == [
        "add real server 10.0.0.11:80 in web (tcp 192.0.2.10:80)",
        "add real server 10.0.0.53:53 in dns (udp 192.0.2.53:53)",
        "add service dns (udp 192.0.2.53:53)",
        "change real server [2001:db8::11]:443 in v6 (tcp [2001:db8::10]:443)",
        "change service mark4 (fwmark 11)",
    ]
    assert rules() == EXPECTED_RULES | {
        "-A -t 198.51.100.99:8080 -s rr", "-a -t 198.51.100.99:8080 -r 10.9.9.9:8080 -m -w 1"}
    # Removing everything from the config removes only what directord made.
    empty = write(tmp_path, "")
    apply_json(empty, tmp_path / "state")
    assert rules() == {"-A -t 198.51.100.99:8080 -s rr", "-a -t 198.51.100.99:8080 -r 10.9.9.9:8080 -m -w 1"}


def test_console_script_applies_and_exits_zero(tmp_path: Path, clean_table: None) -> None:
    config = write(tmp_path, FEATURES)
    proc = subprocess.run(["directord", "apply", "--state-dir", str(tmp_path / "s"), "-c", str(config)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "made 17 changes (6 services, 8 real servers)"
    assert rules() == EXPECTED_RULES


def test_every_scheduler_and_a_missing_one_reported_by_name(tmp_path: Path, clean_table: None) -> None:
    blocks = [
        f'[[virtual_server]]\nname = "{s}"\naddress = "192.0.2.{i + 100}"\nport = 80\nscheduler = "{s}"\n'
        f'[[virtual_server.real_server]]\naddress = "10.0.1.{i + 1}"\n'
        for i, s in enumerate(SCHEDULERS)
    ]
    has_twos = Path("/lib/modules").glob("*/kernel/net/netfilter/ipvs/ip_vs_twos.ko*")
    blocks.append('[[virtual_server]]\nname = "twos"\naddress = "192.0.2.99"\nport = 80\nscheduler = "twos"\n')
    config = write(tmp_path, "\n".join(blocks))
    result = apply_json(config, tmp_path / "state")
    for i, scheduler in enumerate(SCHEDULERS):
        assert f"-A -t 192.0.2.{i + 100}:80 -s {scheduler}" in rules()
    if any(has_twos):
        assert result["returncode"] == 0 and "-A -t 192.0.2.99:80 -s twos" in rules()
    else:  # the kernel lacks it: one error naming the entry, everything else applied
        assert result["returncode"] == 2
        assert len(result["errors"]) == 1 and "tcp 192.0.2.99:80" in result["errors"][0]


def test_removed_real_server_with_connections_is_drained_to_weight_zero(tmp_path: Path,
                                                                       clean_table: None) -> None:
    config = write(tmp_path, FEATURES)
    apply_json(config, tmp_path / "state")
    smaller = write(tmp_path, FEATURES.replace('  [[virtual_server.real_server]]\n  address = "10.0.0.11"\n'
                                               '  weight = 10\n', ""))
    report = apply_json(smaller, tmp_path / "state")
    # No connections on it: removed in the same pass.
    assert [c["action"] for c in report["changes"]] == ["remove"]
    assert "-a -t 192.0.2.10:80 -r 10.0.0.11:80 -m -w 10" not in rules()
