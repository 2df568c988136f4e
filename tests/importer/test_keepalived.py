"""keepalived.conf import: the sample covers VRRP, sync groups, address, fwmark and IPv6
services, every checker type, includes, nested braces and both comment styles."""

from __future__ import annotations

import ipaddress
import re

import pytest

from director.config.load import ConfigError
from director.config.model import HttpUrl
from director.importer import SourceError
from director.importer.cli import render
from director.importer.common import MAX_SOURCE_BYTES
from director.importer.keepalived import convert
from director.importer.lexer import MAX_FILES_READ
from tests.importer.helpers import SAMPLES, imported, notes, remarks


@pytest.fixture(scope="module")
def result():
    conv = convert(str(SAMPLES / "keepalived.conf"))
    config, data = imported(conv, "keepalived")
    return conv, config, data


def test_reads_the_include(result) -> None:
    conv, config, _ = result
    assert [p.rsplit("/", 1)[-1] for p in conv.sources] == ["keepalived.conf", "web-rs.conf"]
    web = config.virtual_server("vs_192_0_2_10_80")
    assert [str(rs.address) for rs in web.real_servers] == ["10.0.0.11", "10.0.0.12"]
    assert [rs.weight for rs in web.real_servers] == [3, 2]


def test_global_and_vrrp(result) -> None:
    _, config, _ = result
    assert config.global_.router_id == "LVS_EDGE_1"
    web, v6 = config.vrrp_instances
    assert (web.name, web.interface, web.vrid, web.priority, web.version) == ("VI_WEB", "eth0", 51, 150, 3)
    # keepalived clears preempt_delay with state MASTER
    assert web.advert_interval == 1.0 and web.preempt and web.preempt_delay == 0.0
    assert web.virtual_ips == (ipaddress.ip_interface("192.0.2.10/24"), ipaddress.ip_interface("192.0.2.11/32"))
    assert [str(a) for a in web.carried_addresses] == ["192.0.2.10/24 dev eth0 label eth0:web", "192.0.2.11/32"]
    assert str(web.unicast_src) == "192.0.2.2" and [str(p) for p in web.unicast_peers] == ["192.0.2.3"]
    assert [(t.name, t.weight) for t in web.track_interfaces] == [("eth1", -50), ("eth2", 0)]
    assert web.notify == ("/usr/local/sbin/vrrp-event", "--quiet") and web.notify_arguments == "keepalived"
    assert web.notify_backup == ("/usr/local/sbin/to-backup",) and not web.notify_master
    [group] = config.vrrp_sync_groups
    assert (group.name, group.notify_master, group.notify) == ("VG_EDGE", ("/etc/keepalived/group-master.sh",), ())
    assert web.sync_group_hooks == group
    assert (web.garp.repeat, web.garp.refresh, web.garp.delay) == (3, 60.0, 5.0)
    assert web.sync_group == v6.sync_group == "VG_EDGE"
    assert v6.advert_interval == 0.5 and not v6.preempt
    assert v6.virtual_ips == (ipaddress.ip_interface("2001:db8:10::10/64"),)


def test_http_service(result) -> None:
    _, config, _ = result
    web = config.virtual_server("vs_192_0_2_10_80")
    assert (web.scheduler, web.method, web.persistence_timeout, web.persistence_netmask) == ("wrr", "nat", 300, 24)
    assert web.quorum == 2 and web.sorry_server.endpoint == "10.0.0.99:8080"
    assert web.on_failure == "quiesce"
    check = web.check
    # both url blocks, each with keepalived's default status 200-299 unless it names one, the digest kept
    assert check.type == "http" and check.urls == (
        HttpUrl("/health", ((200, 200),), digest="9b3a0c85a887a256d6939da88aabd8cd"),
        HttpUrl("/ready", ((200, 299),)))
    assert (check.interval, check.timeout, check.transition_interval) == (6.0, 3.0, 2.0)
    assert (check.rise, check.fall, check.initial) == (1, 3, "up")


def test_fwmark_service(result) -> None:
    _, config, _ = result
    mark = config.virtual_server("fwmark_7")
    assert (mark.fwmark, mark.scheduler, mark.method, mark.persistence_timeout) == (7, "sh", "dr", 600)
    assert mark.on_failure == "remove"
    assert (mark.check.type, mark.check.port, mark.check.timeout, mark.check.fall) == ("tcp", 443, 2.0, 2)
    assert [rs.port for rs in mark.real_servers] == [0, 0]


def test_ipv6_udp_misc_check(result) -> None:
    _, config, _ = result
    dns = config.virtual_server("vs_2001_db8_10_10_53_udp")
    assert (dns.family, dns.protocol, dns.scheduler, dns.method, dns.one_packet) == (6, "udp", "rr", "dr", True)
    assert dns.check.type == "none"  # the two MISC_CHECKs differ: each real server keeps its own
    for rs in dns.real_servers:
        (check,) = rs.checks
        assert check.type == "exec" and check.dynamic_weight and check.timeout == 4.0
        assert check.command == ("/usr/local/bin/check-dns", "--server", str(rs.address), "example.org")
    assert [rs.weight for rs in dns.real_servers] == [1, 2]


def test_ssl_get_with_alpha(result) -> None:
    _, config, _ = result
    tls = config.virtual_server("vs_192_0_2_11_443")
    assert (tls.method, tls.scheduler, tls.protocol) == ("tun", "lc", "tcp")
    assert (tls.check.type, tls.check.path, tls.check.expect_status) == ("https", "/status", ((200, 299),))
    assert (tls.check.initial, tls.check.fall) == ("down", 4)


def test_the_sample_carries_over_with_remarks_only(result) -> None:
    """Digests, several url blocks, per-server checkers and hooks all carry over now: only the
    BFD checker is flagged, and what differs in form is said in a remark."""
    conv, _, _ = result
    assert list(notes(conv)) == [("keepalived.conf", 155)] and len(conv.unmapped) == 1
    assert notes(conv)[("keepalived.conf", 155)].startswith("BFD_CHECK: this check type is not supported")
    assert remarks(conv)[("keepalived.conf", 119)].startswith("misc_path: run as argv")
    # vrrp_version 3: keepalived ignores the authentication block, and so does the import
    assert remarks(conv)[("keepalived.conf", 30)].startswith("authentication: VRRP version 3 has no authentication")


def write(tmp_path, text: str, name: str = "keepalived.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_brace_on_next_line_and_comments_at_line_ends(tmp_path) -> None:
    path = write(tmp_path, """
virtual_server 192.0.2.50 8080   # service
{                                ! brace on its own line
    lb_algo rr ; not a comment but an argument
    real_server 10.1.0.1 8080 { weight 4 }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert vs.scheduler == "rr" and vs.real_servers[0].weight == 4 and vs.check.type == "none"
    assert notes(conv)[("keepalived.conf", 4)].startswith("lb_algo: extra arguments")
    # keepalived 2.2.7 makes a UDP service when there is no protocol line (seen in the VM round trip).
    assert vs.protocol == "udp" and "creates a UDP service" in notes(conv)[("keepalived.conf", 2)]


def test_nested_include_glob_relative_to_the_including_file(tmp_path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, "include rs/*.conf\n", "conf.d/vs.conf")
    (tmp_path / "conf.d" / "rs").mkdir()
    write(tmp_path, "real_server 10.1.0.2 80 {\n  weight 2\n}\n", "conf.d/rs/a.conf")
    write(tmp_path, "real_server 10.1.0.3 80 {\n  weight 3\n}\n", "conf.d/rs/b.conf")
    path = write(tmp_path, "virtual_server 192.0.2.51 80 {\n include conf.d/vs.conf\n}\n")
    config, _ = imported(convert(path), "keepalived")
    assert [(str(rs.address), rs.weight) for rs in config.virtual_servers[0].real_servers] == [
        ("10.1.0.2", 2), ("10.1.0.3", 3)]


def test_includes_that_find_themselves_stop_after_max_files_read(tmp_path) -> None:
    """Found writing tests/fuzz/test_importers.py: k `include *` lines in a file they find again
    read it k**8 times before the depth limit (3 lines: 6,561 reads, 19,683 error lines; 6:
    1.7 million reads); now at most MAX_FILES_READ reads in all."""
    path = write(tmp_path, "include *\n" * 3 + "virtual_server 192.0.2.1 80 {\n}\n")
    with pytest.raises(SourceError) as caught:
        convert(path)
    assert any(re.fullmatch(rf"{re.escape(path)}:[123]: more than {MAX_FILES_READ} files read through includes "
                            r"\(a loop\?\)", line) for line in caught.value.lines), caught.value.lines[:3]
    assert len(caught.value.lines) < 3 * MAX_FILES_READ


def test_includes_are_bounded_in_size_in_all(tmp_path) -> None:
    """Each file is at most MAX_SOURCE_BYTES, and so are a file and its includes together
    (one large file included twice was read twice, whole)."""
    write(tmp_path, "#" * (MAX_SOURCE_BYTES // 2 + 1) + "\n", "big.conf")
    path = write(tmp_path, "include big.conf\ninclude big.conf\n")
    with pytest.raises(SourceError) as caught:
        convert(path)
    assert caught.value.lines == [f"{tmp_path / 'big.conf'}: the file and its includes are larger than 8 MiB in all "
                                  "(a loop?)"]


@pytest.mark.parametrize(("text", "message"), [
    ("virtual_server 192.0.2.1 80 {\n real_server 10.0.0.1 80 {\n", "keepalived.conf:1: '{' is never closed"),
    ("include missing.conf\n", "keepalived.conf:1: include missing.conf: no such file"),
    ("include keepalived.conf\n", "nested deeper than"),
    ("vrrp_instance X {\n virtual_router_id high\n}\n",
     "keepalived.conf:2: virtual_router_id: 'high' is not an integer"),
    ('vrrp_instance X {\n notify "/bin/x\n}\n', "keepalived.conf:2: unterminated quoted string"),
])
def test_syntax_errors_name_file_and_line(tmp_path, text: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        convert(write(tmp_path, text))
    assert any(message in line for line in caught.value.lines), caught.value.lines


INSTANCE = """
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 9
{body}
  virtual_ipaddress {{
    198.51.100.7
  }}
}}
"""


@pytest.mark.parametrize(("body", "priority", "preempt", "delay"), [
    ("  state MASTER", 255, True, 0),  # keepalived's default priority with state MASTER
    ("  state BACKUP", 100, True, 0),
    ("  state MASTER\n  priority 150\n  nopreempt\n  preempt_delay 30", 150, True, 0),  # both cleared
    ("  state BACKUP\n  priority 150\n  nopreempt", 150, False, 0),
    ("  priority 255\n  nopreempt", 255, True, 0),  # an owner always preempts
    ("  state BACKUP\n  priority 90\n  preempt_delay 30", 90, True, 30),
    ("  priority 100,comment", 100, True, 0),  # unreadable: keepalived keeps its default
])
def test_start_state_follows_keepalived(tmp_path, body: str, priority: int, preempt: bool, delay: float) -> None:
    conv = convert(write(tmp_path, INSTANCE.format(body=body)))
    config, _ = imported(conv, "keepalived")
    instance = config.vrrp_instances[0]
    assert (instance.priority, instance.preempt, instance.preempt_delay) == (priority, preempt, delay)
    assert not any(u.directive in ("state", "nopreempt") for u in conv.unmapped)


def test_start_state_remarks_say_what_keepalived_does(tmp_path) -> None:
    conv = convert(write(tmp_path, INSTANCE.format(body="  state MASTER\n  priority 150\n  nopreempt")))
    said = remarks(conv)
    assert "waits for an advert" in said[("keepalived.conf", 5)]
    assert said[("keepalived.conf", 7)].startswith("nopreempt: cleared, as keepalived clears it with state MASTER")
    bad = remarks(convert(write(tmp_path, INSTANCE.format(body="  priority 300"))))
    assert "ignored, as keepalived ignores it" in bad[("keepalived.conf", 5)]


def test_keepalived_slips_are_read_on_with_a_remark(tmp_path) -> None:
    """A stray brace, words after ADDRESS PORT, a bare persistence_timeout and a DR real server
    with a port of its own: keepalived reads on, and the import carries the same meaning."""
    path = write(tmp_path, """
virtual_server 192.0.2.53 53 dev eth0.53 {
  lb_kind DR
  protocol UDP
  persistence_timeout
  real_server 10.0.0.1 5353 {
  }
}
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert (str(vs.address), vs.port, vs.persistence_timeout) == ("192.0.2.53", 53, 360.0)
    assert vs.real_servers[0].port == 53
    said = remarks(conv)
    assert set(said) == {("keepalived.conf", line) for line in (2, 5, 6, 9)}, said
    assert "closes no block" in said[("keepalived.conf", 9)]
    assert not conv.unmapped
    assert "Carried over, with a remark:" in render(conv, "keepalived", "sample")


@pytest.mark.parametrize(("line", "argv", "flagged"), [
    ('notify_master "/etc/ka/notify.sh master"', ("/etc/ka/notify.sh", "master"), False),
    ("notify_master /etc/ka/to-master.sh root root", ("/etc/ka/to-master.sh",), False),
    ("notify_master /etc/ka/to-master.sh nobody", ("/etc/ka/to-master.sh",), True),  # keepalived's USER
])
def test_hook_lines_read_as_keepalived_reads_them(tmp_path, line: str, argv: tuple[str, ...], flagged: bool) -> None:
    conv = convert(write(tmp_path, INSTANCE.format(body="  " + line)))
    config, _ = imported(conv, "keepalived")
    assert config.vrrp_instances[0].notify_master == argv
    assert bool(conv.unmapped) == flagged


def test_notify_fifo_and_every_hook_map_exactly(tmp_path) -> None:
    body = "\n".join(f"  {key} /usr/local/bin/{key}" for key in ("notify", "notify_master", "notify_backup",
                                                                   "notify_fault", "notify_stop"))
    conv = convert(write(tmp_path, "global_defs {\n  vrrp_notify_fifo /run/ka.fifo\n}\n" + INSTANCE.format(body=body)))
    config, _ = imported(conv, "keepalived")
    instance = config.vrrp_instances[0]
    assert not conv.unmapped
    assert config.global_.notify_fifo == instance.notify_fifo == "/run/ka.fifo"
    assert instance.notify_arguments == "keepalived"
    assert [getattr(instance, key) for key in ("notify_stop", "notify_fault")] == [
        ("/usr/local/bin/notify_stop",), ("/usr/local/bin/notify_fault",)]


def test_announcement_directives_map_with_global_defaults(tmp_path) -> None:
    text = """
global_defs {
  vrrp_garp_master_delay 10
  vrrp_garp_master_refresh_repeat 2
  vrrp_garp_lower_prio_repeat 1
  vrrp_gna_interval 0.5
}
""" + INSTANCE.format(body="  garp_master_delay 0\n  garp_lower_prio_delay 3") + INSTANCE.replace(
        "VI_1", "VI_6").replace("virtual_router_id 9", "virtual_router_id 10").replace(
        "198.51.100.7", "2001:db8::7").format(body="")
    conv = convert(write(tmp_path, text))
    config, _ = imported(conv, "keepalived")
    v4, v6 = (vi.garp for vi in config.vrrp_instances)
    assert (v4.delay, v4.refresh_repeat, v4.lower_prio_repeat, v4.lower_prio_delay) == (0.0, 2, 1, 3.0)
    assert (v6.delay, v6.interval) == (10.0, 0.5)
    assert not conv.unmapped
    assert "no effect on vrrp_instance VI_1" in remarks(conv)[("keepalived.conf", 6)]


@pytest.mark.parametrize(("peers", "ttl", "flagged"), [
    ("    192.0.2.3\n", (0, 255), False),  # keepalived takes any TTL without a range
    ("    192.0.2.3 min_ttl 250 max_ttl 254\n    192.0.2.4 min_ttl 250 max_ttl 254\n", (250, 254), False),
    ("    192.0.2.3 min_ttl 250\n    192.0.2.4 min_ttl 240\n", (240, 255), True),  # one range per instance
])
def test_routed_unicast_ttls(tmp_path, peers: str, ttl: tuple[int, int], flagged: bool) -> None:
    body = "  unicast_ttl 64\n  unicast_peer {\n" + peers + "  }"
    conv = convert(write(tmp_path, INSTANCE.format(body=body)))
    config, _ = imported(conv, "keepalived")
    instance = config.vrrp_instances[0]
    assert (instance.unicast_ttl, instance.unicast_min_ttl, instance.unicast_max_ttl) == (64, *ttl)
    assert bool(conv.unmapped) == flagged
    multicast, _ = imported(convert(write(tmp_path, INSTANCE.format(body="  unicast_ttl 64"))), "keepalived")
    assert multicast.vrrp_instances[0].unicast_ttl == 255


def test_vrrp_version_defaults_like_keepalived(tmp_path) -> None:
    path = write(tmp_path, """
vrrp_instance V4 {
  interface eth0
  virtual_router_id 9
  advert_int 2
  nopreempt
  preempt_delay 10
  virtual_ipaddress {
    198.51.100.7
  }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    instance = config.vrrp_instances[0]
    assert (instance.version, instance.advert_interval, instance.preempt, instance.preempt_delay) == (2, 2.0, False, 0)
    assert notes(conv)[("keepalived.conf", 7)].startswith("preempt_delay: has no effect with nopreempt")


def test_skip_check_adv_addr_has_no_effect_and_is_remarked(tmp_path) -> None:
    path = write(tmp_path, """
global_defs {
  vrrp_skip_check_adv_addr
}
vrrp_instance V4 {
  interface eth0
  virtual_router_id 9
  skip_check_adv_addr
  virtual_ipaddress {
    198.51.100.7
  }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    assert config.vrrp_instances[0].check_advert_addresses is True
    assert not conv.unmapped
    said = remarks(conv)
    assert said[("keepalived.conf", 3)].startswith("vrrp_skip_check_adv_addr: no effect in directord")
    assert said[("keepalived.conf", 8)].startswith("skip_check_adv_addr: no effect in directord")


def test_sync_daemon_and_timeouts_from_global_defs(tmp_path) -> None:
    path = write(tmp_path, """
global_defs {
  lvs_sync_daemon eth1 VI_1 id 51 maxlen 1400
  lvs_timeouts tcp 900 tcpfin 120 udp 300
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    sync = config.ipvs.sync_daemon
    assert (sync.interface, sync.syncid, sync.max_packet_size) == ("eth1", 51, 1400)
    assert (config.ipvs.timeout_tcp, config.ipvs.timeout_tcpfin, config.ipvs.timeout_udp) == (900, 120, 300)
    assert sync.instance is None and "names no vrrp_instance of this file (VI_1)" in notes(conv)[("keepalived.conf", 3)]


def test_the_sync_daemon_follows_the_instance_keepalived_names(tmp_path) -> None:
    path = write(tmp_path, """
global_defs {
  lvs_sync_daemon eth1 VI_2
  lvs_sync_daemon eth1 VI_1
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress { 192.0.2.1 }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  virtual_ipaddress { 192.0.2.2 }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    assert config.ipvs.sync_daemon.instance == "VI_2"
    assert notes(conv) == {}
    assert "keepalived ignores every lvs_sync_daemon after the first" in remarks(conv)[("keepalived.conf", 4)]


def test_sync_group_naming_an_unknown_instance_is_an_error(tmp_path) -> None:
    path = write(tmp_path, "vrrp_sync_group G {\n  group {\n    VI_GONE\n  }\n}\n")
    with pytest.raises(SourceError) as caught:
        convert(path)
    assert caught.value.lines == [f"{path}:3: VI_GONE: no vrrp_instance named 'VI_GONE'"]


def test_fwmark_check_without_a_port_becomes_none(tmp_path) -> None:
    path = write(tmp_path, """
virtual_server fwmark 3 {
  real_server 10.2.0.1 0 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    assert config.virtual_servers[0].check.type == "none"
    assert "nothing to check" in notes(conv)[("keepalived.conf", 4)]


def test_ipv6_fwmark_service_gets_its_family(tmp_path) -> None:
    path = write(tmp_path, """
virtual_server fwmark 9 {
  lb_kind DR
  sorry_server 2001:db8::99 443
  real_server 2001:db8::1 443 {
    HTTP_GET {
      url {
        path /up
        regex "^ok$"
      }
    }
  }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert (vs.fwmark, vs.family, vs.sorry_server.endpoint) == (9, 6, "[2001:db8::99]:443")
    assert (vs.check.type, vs.check.path, vs.check.expect_body, vs.check.expect_status) == (
        "http", "/up", "^ok$", ((200, 299),))
    assert conv.unmapped == []


def test_ssl_get_imports_as_https_that_does_not_verify_as_keepalived(tmp_path) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text("virtual_server 192.0.2.5 443 {\n  lb_algo rr\n  protocol TCP\n  real_server 10.0.0.5 443 {\n"
                      "    SSL_GET {\n      url {\n        path /\n        status_code 200\n      }\n    }\n  }\n}\n")
    config, data = imported(convert(str(source)), "keepalived")
    assert data["virtual_server"][0]["check"]["tls_verify"] is False
    assert config.virtual_servers[0].check.tls_verify is False


@pytest.mark.parametrize("code", ["²", "9" * 5000])
def test_a_status_code_that_is_not_a_number_is_refused_by_the_loader(tmp_path, code: str) -> None:
    """Found by tests/fuzz/test_importers.py: int() raised ValueError on "²" (a digit to
    str.isdigit) and on more than 4300 digits; now the code is written as given and refused."""
    source = tmp_path / "keepalived.conf"
    source.write_text("virtual_server 192.0.2.5 80 {\n  protocol TCP\n  real_server 10.0.0.5 80 {\n    HTTP_GET {\n"
                      "      url {\n"
                      f"        path /\n        status_code 200 {code}\n      }}\n    }}\n  }}\n}}\n")
    with pytest.raises(ConfigError) as caught:
        imported(convert(str(source)), "keepalived")
    assert caught.value.lines[0].startswith(
        f"imported.toml: virtual_server \"vs_192_0_2_5_80\".check.expect_status[1]: must be a status code 100..699 "
        f"or a range \"200-299\", got '{code[:10]}")


def test_mcast_src_ip_and_higher_prio_send_advert(tmp_path) -> None:
    body = "  mcast_src_ip 192.0.2.2\n  higher_prio_send_advert true"
    conv = convert(write(tmp_path, INSTANCE.format(body=body)))
    config, _ = imported(conv, "keepalived")
    assert str(config.vrrp_instances[0].unicast_src) == "192.0.2.2"
    assert not conv.unmapped and "always sends a last advert" in remarks(conv)[("keepalived.conf", 6)]
    off = convert(write(tmp_path, INSTANCE.format(body="  higher_prio_send_advert false")))
    assert notes(off)[("keepalived.conf", 5)].startswith("higher_prio_send_advert: directord always sends")


def test_parameters_are_substituted_as_keepalived_does(tmp_path) -> None:
    """`$NAME=VALUE` defines, `$NAME` before whitespace and `${NAME}` anywhere are replaced,
    recursively and at use; an undefined one stays as written."""
    text = """
$IF=eth1
$BASE=198.51.100.${SUB}
$SUB=7
vrrp_instance VI_1 {
  interface $IF
  virtual_router_id 9
  virtual_ipaddress {
    ${BASE}/32
  }
  notify "/usr/local/bin/hook $UNDEFINED"
}
"""
    config, _ = imported(convert(write(tmp_path, text)), "keepalived")
    instance = config.vrrp_instances[0]
    assert instance.interface == "eth1" and str(instance.virtual_ips[0]) == "198.51.100.7/32"
    assert instance.notify == ("/usr/local/bin/hook", "$UNDEFINED")
    with pytest.raises(SourceError) as caught:
        convert(write(tmp_path, "$MULTI=a \\\n  b\n"))
    assert "parameters defined over several lines are not supported" in str(caught.value)


def test_enable_script_security_maps_to_script_security(tmp_path) -> None:
    text = "global_defs {\n  enable_script_security\n  script_user root\n}\n" + INSTANCE.format(body="")
    conv = convert(write(tmp_path, text))
    config, _ = imported(conv, "keepalived")
    assert config.global_.script_security and not conv.unmapped
    assert "refuses a config" in remarks(conv)[("keepalived.conf", 2)]
    alone = convert(write(tmp_path, "global_defs {\n  enable_script_security\n}\n" + INSTANCE.format(body="")))
    assert "keepalived_script" in notes(alone)[("keepalived.conf", 2)]


def test_an_instance_announcement_directive_in_global_defs_is_ignored_as_keepalived_does(tmp_path) -> None:
    """keepalived -t: `Unknown keyword 'garp_master_delay'` in global_defs; only vrrp_garp_master_delay counts."""
    conv = convert(write(tmp_path, "global_defs {\n  garp_master_delay 3\n}\n" + INSTANCE.format(body="")))
    config, _ = imported(conv, "keepalived")
    assert config.vrrp_instances[0].garp.delay == 5.0 and not conv.unmapped
    assert "ignores it in global_defs" in remarks(conv)[("keepalived.conf", 2)]


def test_dont_track_primary(tmp_path) -> None:
    conv = convert(write(tmp_path, INSTANCE.format(body="  dont_track_primary")))
    config, _ = imported(conv, "keepalived")
    assert config.vrrp_instances[0].track_own_interface is False and not conv.unmapped


def test_several_checkers_stay_with_their_real_server(tmp_path) -> None:
    path = write(tmp_path, """
virtual_server 192.0.2.60 80 {
    protocol TCP
    delay_loop 3
    real_server 10.2.0.1 80 {
        TCP_CHECK {
            connect_ip 10.3.0.1
            connect_port 8081
            bindto 10.9.0.5
            bind_if eth1
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check_app 10.2.0.1"
        }
    }
    real_server 10.2.0.2 80 {
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 10.2.0.3 80 {
    }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    first, second, third = vs.real_servers
    tcp, misc = first.checks
    assert (tcp.type, str(tcp.address), tcp.port, str(tcp.bind_address), tcp.bind_interface) == \
        ("tcp", "10.3.0.1", 8081, "10.9.0.5", "eth1")
    assert (misc.type, misc.command, misc.interval) == ("exec", ("/usr/local/bin/check_app", "10.2.0.1"), 3.0)
    assert [(c.type, c.timeout, c.interval) for c in second.checks] == [("tcp", 2.0, 3.0)]
    # keepalived never checks a real server without a checker: it stays up
    assert third.checks == () and vs.checks_of(third)[0].type == "none"
    assert notes(conv) == {}, notes(conv)


def test_one_shared_checker_stays_the_service_check(tmp_path) -> None:
    path = write(tmp_path, """
virtual_server 192.0.2.61 80 {
    protocol TCP
    real_server 10.2.0.1 80 { TCP_CHECK { connect_timeout 2 } }
    real_server 10.2.0.2 80 { TCP_CHECK { connect_timeout 2 } }
}
""")
    config, data = imported(convert(path), "keepalived")
    vs = config.virtual_servers[0]
    assert vs.check.type == "tcp" and vs.check.timeout == 2.0
    assert all(rs.checks == () for rs in vs.real_servers)
    assert "checks" not in data["virtual_server"][0]["real_server"][0]


@pytest.mark.parametrize(("scheduler", "lines", "flags", "remarked"), [
    ("sh", ["sh-fallback", "sh-port"], ("sh-fallback", "sh-port"), 0),
    ("mh", ["mh-port", "mh-fallback"], ("mh-fallback", "mh-port"), 0),
    ("mh", ["flag-1"], ("mh-fallback",), 0),
    ("sh", ["mh-fallback"], ("sh-fallback",), 0),  # one kernel bit, whatever keepalived calls it
    ("rr", ["sh-port", "flag-3"], (), 2),  # rr reads no flag: the kernel ignores them
])
def test_scheduler_flags_by_the_kernel_bit_they_set(tmp_path, scheduler, lines, flags, remarked) -> None:
    body = "\n".join(f"    {line}" for line in lines)
    path = write(tmp_path, f"""
virtual_server 192.0.2.62 80 {{
    protocol TCP
    lb_algo {scheduler}
{body}
    real_server 10.2.0.1 80 {{ }}
}}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    assert config.virtual_servers[0].scheduler_flags == flags
    assert notes(conv) == {}
    assert sum("dropped" in text for text in remarks(conv).values()) == remarked


def test_pool_hooks_map_exactly(tmp_path) -> None:
    path = write(tmp_path, """
virtual_server 192.0.2.63 80 {
    protocol TCP
    quorum 2
    quorum_up "/usr/local/bin/pool.sh up"
    quorum_down /usr/local/bin/pool-down.sh
    omega
    real_server 10.2.0.1 80 {
        weight 2
        notify_up "/usr/local/bin/rs.sh 10.2.0.1 UP"
        notify_down "/usr/local/bin/rs.sh 10.2.0.1 DOWN" root
        TCP_CHECK { }
    }
}
""")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert (vs.quorum_up, vs.quorum_down, vs.omega) == (("/usr/local/bin/pool.sh", "up"),
                                                       ("/usr/local/bin/pool-down.sh",), True)
    rs = vs.real_servers[0]
    assert rs.notify_up == ("/usr/local/bin/rs.sh", "10.2.0.1", "UP")
    assert rs.notify_down == ("/usr/local/bin/rs.sh", "10.2.0.1", "DOWN")
    assert notes(conv) == {}


def test_hysteresis_maps_exactly(tmp_path) -> None:
    path = write(tmp_path, "virtual_server 192.0.2.64 80 {\n  protocol TCP\n  quorum 3\n  hysteresis 1\n"
                           "  real_server 10.2.0.1 80 { weight 3 }\n}\n")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    assert (config.virtual_servers[0].quorum, config.virtual_servers[0].hysteresis) == (3, 1)
    assert notes(conv) == {}
