"""piranha lvs.cf import: pulse failover as one VRRP instance, nat/direct/tunnel,
send/expect checks, send_program, fwmark, inactive virtuals and servers."""

from __future__ import annotations

import ipaddress

import pytest

from director.importer.piranha import convert
from tests.importer.helpers import SAMPLES, imported, notes


@pytest.fixture(scope="module")
def result():
    conv = convert(str(SAMPLES / "lvs.cf"))
    config, _ = imported(conv, "piranha")
    return conv, config


def test_pulse_becomes_one_vrrp_instance(result) -> None:
    _, config = result
    (instance,) = config.vrrp_instances
    assert (instance.name, instance.interface, instance.vrid, instance.priority) == ("pulse", "eth0", 1, 150)
    assert instance.advert_interval == 2.0
    assert str(instance.unicast_src) == "192.0.2.2" and [str(p) for p in instance.unicast_peers] == ["192.0.2.3"]
    assert instance.virtual_ips == tuple(ipaddress.ip_interface(v) for v in (
        "192.0.2.30/24", "192.0.2.31/32", "192.0.2.32/32"))


def test_http_send_expect(result) -> None:
    _, config = result
    web = config.virtual_server("vs_192_0_2_30_80")
    assert (web.method, web.scheduler, web.persistence_timeout, web.persistence_netmask) == ("nat", "wlc", 120, 24)
    assert web.check.send == b"GET /ping HTTP/1.0\r\n\r\n"
    assert web.check.expect == r"HTTP/1\.1 200 OK \(fast\)"  # literal: use_regex = 0
    assert (web.check.fall, web.check.rise) == (3, 8)
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
    found = notes(conv)
    assert "vs_192_0_2_33_8080" not in {vs.name for vs in config.virtual_servers}
    for line, directive in [(2, "serial_no"), (3, "primary"), (11, "deadtime"), (13, "nat_router"),
                            (27, "load_monitor"), (30, "timeout"), (31, "reentry"), (32, "quiesce_server"),
                            (43, "server"), (69, "send_program"), (75, "virtual")]:
        assert found[("lvs.cf", line)].startswith(directive + ":"), (line, found.get(("lvs.cf", line)))
    assert "not imported" in found[("lvs.cf", 43)] and "not imported" in found[("lvs.cf", 75)]


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
