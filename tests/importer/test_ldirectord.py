"""ldirectord.cf import: globals as defaults, gate/masq/ipip, negotiate/connect/external
checks, address ranges, IPv6, fwmark, quoted hashes and end-of-line comments."""

from __future__ import annotations

import pytest

from director.importer import SourceError
from director.importer.ldirectord import MAX_RANGE_ADDRESSES, convert
from tests.importer.helpers import SAMPLES, imported, notes, remarks


@pytest.fixture(scope="module")
def result():
    conv = convert(str(SAMPLES / "ldirectord.cf"))
    config, _ = imported(conv, "ldirectord")
    return conv, config


def test_http_negotiate_with_direct_routing(result) -> None:
    _, config = result
    web = config.virtual_server("vs_192_0_2_20_80")
    assert (web.method, web.scheduler, web.persistence_timeout, web.persistence_netmask) == ("dr", "wlc", 900, 24)
    assert web.on_failure == "quiesce" and web.sorry_server.endpoint == "127.0.0.1:80"
    check = web.check
    assert (check.type, check.path, check.expect_body, check.host) == (
        "http", "/healthz.html", "Still # alive", "www.example.org")
    assert (check.interval, check.timeout, check.fall, check.rise) == (5.0, 3.0, 3, 1)
    assert [(str(rs.address), rs.weight) for rs in web.real_servers] == [
        ("10.0.1.11", 5), ("10.0.1.12", 3), ("10.0.1.13", 1), ("10.0.1.14", 1)]


def test_masq_connect_check_overrides_globals(result) -> None:
    _, config = result
    smtp = config.virtual_server("vs_192_0_2_20_25")
    assert (smtp.method, smtp.scheduler, smtp.on_failure) == ("nat", "rr", "remove")
    assert smtp.check.type == "tcp" and smtp.sorry_server.endpoint == "10.0.1.99:25"
    assert [(rs.port, rs.weight) for rs in smtp.real_servers] == [(25, 1), (2525, 2)]


def test_ipv6_tunnel_https(result) -> None:
    _, config = result
    tls = config.virtual_server("vs_2001_db8_20_80_443")
    assert (tls.family, tls.method, tls.scheduler, tls.sorry_server) == (6, "tun", "wrr", None)
    assert (tls.check.type, tls.check.path, tls.check.expect_body) == ("https", "/status.html", "OK")


def test_fwmark_external_check(result) -> None:
    _, config = result
    mark = config.virtual_server("fwmark_12")
    assert (mark.fwmark, mark.method, mark.scheduler) == (12, "dr", "sh")
    assert mark.check.type == "exec" and mark.check.command == ("/usr/local/bin/check-pool", "--fast")


def test_unmapped(result) -> None:
    conv, _ = result
    found = notes(conv)
    assert sorted(found) == [("ldirectord.cf", n) for n in (9, 43, 50)]
    assert found[("ldirectord.cf", 9)].startswith("fallback: fallback 127.0.0.1 is not the address family")
    assert found[("ldirectord.cf", 43)].startswith("emailalert:")
    assert "DIRECTORD_ADDRESS" in found[("ldirectord.cf", 50)]


def test_global_autoreload_and_logfile(result) -> None:
    _, config = result
    assert config.global_.auto_reload is True and config.global_.log_file == "/var/log/ldirectord.log"


def test_a_real_server_own_request_and_receive(result) -> None:
    _, config = result
    tls = config.virtual_server("vs_2001_db8_20_80_443")
    plain, own = tls.real_servers
    assert plain.checks == () and tls.check.path == "/status.html"
    (check,) = own.checks
    assert (check.type, check.path, check.expect_body, check.tls_verify) == ("https", "/status.html", "OK", False)


@pytest.mark.parametrize(("value", "key", "expected"), [
    ('"local0"', "log_facility", "local0"), ("/var/log/directord/ld.log", "log_file", "/var/log/directord/ld.log")])
def test_logfile_is_a_file_or_a_syslog_facility(tmp_path, value, key, expected) -> None:
    path = tmp_path / "ld.cf"
    path.write_text(f"logfile={value}\nvirtual=192.0.2.40:80\n    real=10.0.0.1:80 masq\n")
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    assert getattr(config.global_, key) == expected and notes(conv) == {}


def test_checkcommand_gets_the_virtual_and_real_server_appended(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.40:www\n    real=10.0.0.1:8080 masq\n    real=10.0.0.2:http masq\n"
                    '    checktype=external\n    checkcommand="/usr/local/bin/check-web --quick"\n')
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    vs = config.virtual_servers[0]
    assert vs.port == 80 and [rs.port for rs in vs.real_servers] == [8080, 80]
    assert [rs.checks[0].command for rs in vs.real_servers] == [
        ("/usr/local/bin/check-web", "--quick", "192.0.2.40", "80", "10.0.0.1", "8080"),
        ("/usr/local/bin/check-web", "--quick", "192.0.2.40", "80", "10.0.0.2", "80")]
    assert notes(conv) == {}


def test_defaults_when_nothing_is_set(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.40:80\n    real=10.0.0.1:80 masq\n")
    config, _ = imported(convert(str(path)), "ldirectord")
    vs = config.virtual_servers[0]
    assert (vs.scheduler, vs.on_failure, vs.check.type, vs.check.interval, vs.check.timeout, vs.check.fall) == (
        "wrr", "quiesce", "http", 10.0, 30.0, 1)


@pytest.mark.parametrize(("text", "message"), [
    ("virtual=192.0.2.1:80\n    real=10.0.0.1:80 bridge\n", "ld.cf:2: real: 'bridge' is not gate, masq or ipip"),
    ("real=10.0.0.1:80 gate\n", "ld.cf:1: real: real= must be indented"),
    ("virtual=www:80\n", "ld.cf:1: virtual: 'www:80' is not ADDRESS:PORT"),
    ("virtual=192.0.2.1:nosuchservice\n", "ld.cf:1: virtual: '192.0.2.1:nosuchservice' is not ADDRESS:PORT"),
    ("this is not a setting\n", "ld.cf:1: expected KEY=VALUE"),
    ('virtual=192.0.2.1:80\n    real=10.0.0.1:80 gate\n    checktype=external\n    checkcommand="/bin/ch eck\n',
     "ld.cf:4: checkcommand: cannot split the command: No closing quotation"),
    # found by tests/fuzz/test_importers.py: int() raised ValueError on more than 4300 digits, and on "²"
    ("virtual=10.0.0.1:" + "9" * 5000 + "\n", "ld.cf:1: virtual: '10.0.0.1:9999"),
    ("virtual=[::1]:" + "9" * 5000 + "\n", "ld.cf:1: virtual: '[::1]:9999"),
    ("virtual=" + "9" * 5000 + "\n", "is not ADDRESS:PORT, [IPV6]:PORT or a fwmark number"),
    ("virtual=²\n", "ld.cf:1: virtual: '²' is not ADDRESS:PORT, [IPV6]:PORT or a fwmark number"),
    ("virtual=192.0.2.1:80\n    real=10.0.0.1:" + "9" * 5000 + " masq\n", "does not start with ADDRESS:PORT"),
    ("virtual=192.0.2.1:80\n    real=[::1]:" + "9" * 5000 + " masq\n", "does not start with ADDRESS:PORT"),
    ("virtual=192.0.2.1:80\n    real=10.0.0.1:80 masq\n    fallback=10.0.0.3:" + "9" * 5000 + "\n",
     "ld.cf:3: fallback: '10.0.0.3:9999"),
])
def test_errors(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "ld.cf"
    path.write_text(text)
    with pytest.raises(SourceError) as caught:
        convert(str(path))
    assert any(message in line for line in caught.value.lines), caught.value.lines


def test_negotiate_for_other_services_falls_back_to_connect(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.41:119\n    real=10.0.0.1:119 gate\n    service=nntp\n    checktype=3\n")
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    assert config.virtual_servers[0].check.type == "tcp"
    found = notes(conv)
    assert "connect check here" in remarks(conv)[("ld.cf", 4)]  # checktype=3 of a connect check: each time
    assert found[("ld.cf", 3)].startswith("service: negotiate checks for nntp are not supported")


def test_an_https_negotiate_check_does_not_verify_as_ldirectord(tmp_path) -> None:
    source = tmp_path / "ldirectord.cf"
    source.write_text("virtual=192.0.2.5:443\n\treal=10.0.0.5:443 gate\n\tservice=https\n\tchecktype=negotiate\n"
                      "\trequest=\"/\"\n\treceive=\"ok\"\n")
    _config, data = imported(convert(str(source)), "ldirectord")
    assert data["virtual_server"][0]["check"]["tls_verify"] is False


def test_ranges_make_at_most_max_range_addresses_real_servers_in_all(tmp_path) -> None:
    """Found writing tests/fuzz/test_importers.py: FIRST->LAST expanded without a bound, so
    one line 0.0.0.0->255.255.255.255 asked for four billion real servers. (Tested just past
    the bound: on the old code the full range does not fail, it runs out of memory.)"""
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.1:80\n    real=10.0.0.0->10.0.255.255:80 masq\n")
    assert len(convert(str(path)).config["virtual_server"][0]["real_server"]) == MAX_RANGE_ADDRESSES
    path.write_text("virtual=192.0.2.1:80\n    real=10.0.0.0->10.1.0.0:80 masq\n")
    with pytest.raises(SourceError) as caught:
        convert(str(path))
    assert caught.value.lines == [f"{path}:2: real: 10.0.0.0->10.1.0.0 is 65537 addresses; the ranges of a file make "
                                  f"at most {MAX_RANGE_ADDRESSES} real servers in all"]
    path.write_text("virtual=192.0.2.1:80\n    real=10.0.0.0->10.0.127.255:80 masq\n"
                    "virtual=192.0.2.2:80\n    real=10.1.0.0->10.1.127.255:80 masq\n    real=10.2.0.1:80 masq\n"
                    "virtual=192.0.2.3:80\n    real=10.3.0.0->10.3.0.1:80 masq\n")
    with pytest.raises(SourceError) as caught:
        convert(str(path))
    assert caught.value.lines == [f"{path}:7: real: 10.3.0.0->10.3.0.1 is 2 addresses; the ranges of a file make "
                                  f"at most {MAX_RANGE_ADDRESSES} real servers in all"]


def test_duplicates_are_merged_with_a_word(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.40:80\n    real=10.0.0.1:80 masq\n    real=10.0.0.1:80 masq\n"
                    "    real=10.0.0.2:80 masq 3\n    real=10.0.0.2:80 masq 5\n"
                    "virtual=192.0.2.40:80\n    real=10.0.0.3:80 masq\n"
                    "virtual=192.0.2.40:80\n    real=10.0.0.4:80 masq\n    scheduler=rr\n")
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    (vs,) = config.virtual_servers
    assert [(str(rs.address), rs.weight) for rs in vs.real_servers] == [
        ("10.0.0.1", 1), ("10.0.0.2", 3), ("10.0.0.3", 1), ("10.0.0.4", 1)]
    assert vs.scheduler == "wrr"
    flagged, said = notes(conv), remarks(conv)
    assert sorted(flagged) == [("ld.cf", 5), ("ld.cf", 6), ("ld.cf", 8)], flagged
    assert "with other settings" in flagged[("ld.cf", 5)] and "(scheduler) are ignored" in flagged[("ld.cf", 8)]
    assert "which ldirectord refuses" in flagged[("ld.cf", 6)] and "kept once" in said[("ld.cf", 3)]


def test_fallbackcommand_becomes_the_quorum_hooks(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text('fallbackcommand="/usr/local/sbin/sorry-page --site www"\n'
                    "virtual=192.0.2.40:80\n    real=10.0.0.1:80 masq\n")
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    vs = config.virtual_servers[0]
    assert vs.quorum == 1
    assert vs.quorum_down == ("/usr/local/sbin/sorry-page", "--site", "www", "start")
    assert vs.quorum_up == ("/usr/local/sbin/sorry-page", "--site", "www", "stop")
    assert notes(conv) == {}


def test_real_servers_by_host_name_stay_names(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.40:80\n    real=localhost:8080 masq\n")
    conv = convert(str(path))
    data = imported(conv, "ldirectord")[1]
    assert data["virtual_server"][0]["real_server"][0]["address"] == "localhost"


def test_a_request_every_real_server_names_alike_is_the_services_own(tmp_path) -> None:
    """ldirectord: a real= line's "request", "receive" override the virtual's for that server;
    when every real server names the same, that is the virtual's request, imported exactly."""
    path = tmp_path / "ldirectord.cf"
    path.write_text('virtual=192.0.2.30:80\n\treal=10.0.2.1:80 masq 1 "/alive.html" "yes"\n'
                    '\treal=10.0.2.2:80 masq 2 "/alive.html" "yes"\n\tservice=http\n\tchecktype=negotiate\n'
                    '\tvirtualhost=www.example.org\n\thttpmethod=HEAD\n')
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    check = config.virtual_servers[0].check
    assert (check.path, check.expect_body, check.host, check.method) == ("/alive.html", "yes", "www.example.org",
                                                                       "HEAD")
    assert not notes(conv)
    path.write_text(path.read_text().replace('2 "/alive.html" "yes"', '2 "/other.html" "yes"'))
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")  # they differ: each real server is checked with its own
    assert [rs.checks[0].path for rs in config.virtual_servers[0].real_servers] == ["/alive.html", "/other.html"]
    assert not notes(conv)


def test_checktype_n_connects_n_times_then_negotiates(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("checkinterval=5\nvirtual=192.0.2.40:80\n    real=10.0.0.1:80 masq\n    real=10.0.0.2:80 masq\n"
                    '    service=http\n    request="/ok"\n    receive="fine"\n    checktype=3\n')
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    vs = config.virtual_servers[0]
    for rs in vs.real_servers:
        connect, negotiate = rs.checks
        assert (connect.type, connect.interval) == ("tcp", 5.0)
        assert (negotiate.type, negotiate.path, negotiate.expect_body, negotiate.interval) == ("http", "/ok", "fine",
                                                                                             20.0)
    assert notes(conv) == {} and "checktype=3" in remarks(conv)[("ld.cf", 8)]


def test_checktype_off_never_activates_a_server(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=192.0.2.40:80\n    real=10.0.0.1:80 masq 5\n    fallback=127.0.0.1:80 masq\n"
                    "    checktype=off\n")
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    vs = config.virtual_servers[0]
    assert [rs.weight for rs in vs.real_servers] == [0] and vs.sorry_server is None
    assert notes(conv) == {} and "weight 0" in remarks(conv)[("ld.cf", 4)]


def test_a_fwmark_check_talks_to_its_service_types_port(tmp_path) -> None:
    path = tmp_path / "ld.cf"
    path.write_text("virtual=7\n    real=10.0.0.1 gate\n    service=https\n    checktype=negotiate\n")
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    assert config.virtual_servers[0].check.port == 443 and notes(conv) == {}
