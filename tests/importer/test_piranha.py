"""piranha lvs.cf import: pulse failover as one VRRP instance, nat/direct/tunnel,
send/expect checks, send_program, fwmark, inactive virtuals and servers."""

from __future__ import annotations

import ipaddress

import pytest

from director.importer.piranha import convert
from tests.importer.helpers import SAMPLES, imported, notes, remarks


@pytest.fixture(scope="module")
def result():
    conv = convert(str(SAMPLES / "lvs.cf"))
    config, _ = imported(conv, "piranha")
    return conv, config


def test_pulse_becomes_one_vrrp_instance(result) -> None:
    _, config = result
    (instance,) = config.vrrp_instances
    assert (instance.name, instance.interface, instance.vrid, instance.priority) == ("pulse", "eth0", 1, 150)
    assert instance.advert_interval == 3.33  # deadtime 10 / 3: dead after 3 missed adverts, as pulse after 10s
    assert str(instance.unicast_src) == "192.0.2.2" and [str(p) for p in instance.unicast_peers] == ["192.0.2.3"]
    assert instance.virtual_ips == tuple(ipaddress.ip_interface(v) for v in (
        "192.0.2.30/24", "192.0.2.31/32", "192.0.2.32/32", "10.0.2.254/32"))
    gateway = instance.address_options[-1]  # nat_router: the real servers' gateway moves with the VIPs
    assert (gateway.dev, gateway.label) == ("eth1", "eth1:1")
    assert instance.track_own_interface  # monitor_links = 1


def test_http_send_expect(result) -> None:
    _, config = result
    web = config.virtual_server("vs_192_0_2_30_80")
    assert (web.method, web.scheduler, web.persistence_timeout, web.persistence_netmask) == ("nat", "wlc", 120, 24)
    assert web.check.send == b"GET /ping HTTP/1.0\r\n\r\n"
    assert web.check.expect == r"HTTP/1\.1 200 OK \(fast\)"  # literal: use_regex = 0
    # timeout 6 and reentry 15 are whole seconds: every 3s, 2 failures down and 5 passes back, exactly
    assert (web.check.interval, web.check.fall, web.check.rise) == (3.0, 2, 5)
    assert [(str(rs.address), rs.weight) for rs in web.real_servers] == [("10.0.2.11", 3), ("10.0.2.12", 1)]


def test_regex_expect_and_default_timing(result) -> None:
    _, config = result
    mail = config.virtual_server("vs_192_0_2_31_25")
    assert mail.check.expect == "^220 " and (mail.check.fall, mail.check.rise) == (5, 90)


def test_fwmark_with_send_program(result) -> None:
    _, config = result
    ftp = config.virtual_server("fwmark_21")
    assert (ftp.fwmark, ftp.persistence_timeout) == (21, 3600)
    assert ftp.check.command == ("/bin/sh", "-c", "/usr/local/bin/check-ftp --host $DIRECTORD_ADDRESS")
    assert [rs.port for rs in ftp.real_servers] == [0]


def test_inactive_entries_and_approximations_are_listed(result) -> None:
    conv, config = result
    found, said = notes(conv), remarks(conv)
    assert "vs_192_0_2_33_8080" not in {vs.name for vs in config.virtual_servers}
    for line, directive in [(4, "primary_private"), (32, "quiesce_server"), (69, "send_program")]:
        assert found[("lvs.cf", line)].startswith(directive + ":"), (line, found.get(("lvs.cf", line)))
    for line, directive in [(2, "serial_no"), (3, "primary"), (9, "heartbeat_port"), (11, "deadtime"),
                            (14, "debug_level"), (30, "timeout"), (31, "reentry"), (43, "server"), (75, "virtual")]:
        assert said[("lvs.cf", line)].startswith(directive + ":"), (line, said.get(("lvs.cf", line)))
    assert "not imported, as pulse leaves it out" in said[("lvs.cf", 43)]
    assert "not imported, as pulse leaves it out" in said[("lvs.cf", 75)]
    assert ("lvs.cf", 27) not in found  # load_monitor = none: nothing to carry


def test_tunnel_ipv6(tmp_path) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text("""primary = 2001:db8::2
backup = 2001:db8::3
network = tunnel
virtual V6 {
  address = 2001:db8::80 eth2
  port = 443
  server a { address = 2001:db8:1::1
  }
}
""")
    config, _ = imported(convert(str(path)), "piranha")
    vs, instance = config.virtual_servers[0], config.vrrp_instances[0]
    assert (vs.family, vs.method, vs.check.type) == (6, "tun", "tcp")
    assert instance.interface == "eth2" and instance.family == 6 and str(instance.unicast_src) == "2001:db8::2"


def test_pulse_commands_sync_daemon_links_and_a_virtual_without_address(tmp_path) -> None:
    path = tmp_path / "lvs.cf"
    path.write_text("""primary = 192.0.2.2
backup = 192.0.2.3
backup_active = 1
monitor_links = 0
syncdaemon = 1
active_cmd = /etc/sysconfig/ha/active.sh
inactive_cmd = /etc/sysconfig/ha/inactive.sh --quiet
virtual nowhere {
  port = 443
}
virtual web {
  address = 192.0.2.30 eth0:1
  port = 80
  server a { address = 10.0.0.1
  }
}
""")
    conv = convert(str(path))
    config, _ = imported(conv, "piranha")
    (instance,) = config.vrrp_instances
    assert instance.notify_master == ("/etc/sysconfig/ha/active.sh",)
    assert instance.notify_backup == ("/etc/sysconfig/ha/inactive.sh", "--quiet")
    assert instance.track_own_interface is False
    assert config.ipvs.sync_daemon is not None and config.ipvs.sync_daemon.interface == "eth0"
    assert [vs.name for vs in config.virtual_servers] == ["vs_192_0_2_30_80"]
    assert "has no address" in notes(conv)[("lvs.cf", 8)]
