"""keepalived's DNS_CHECK, UDP_CHECK, PING_CHECK and SMTP_CHECK import as directord's dns, udp,
ping and smtp checks, with keepalived's defaults; what has no equivalent is listed."""

from __future__ import annotations

from pathlib import Path

from director.importer.keepalived import _hex_bytes, convert
from tests.importer.helpers import imported, notes


def conv_of(tmp_path: Path, checker: str, protocol: str = "UDP", port: int = 53):
    path = tmp_path / "keepalived.conf"
    path.write_text(f"""virtual_server 192.0.2.53 {port} {{
    lb_algo rr
    lb_kind NAT
    protocol {protocol}
    real_server 10.0.0.1 {port} {{
{checker}
    }}
}}
""")
    conv = convert(str(path))
    config, data = imported(conv, str(path))
    return conv, config.virtual_servers[0].check, data["virtual_server"][0]["check"]


def test_dns_check_with_keepalived_defaults(tmp_path) -> None:
    conv, check, table = conv_of(tmp_path, "DNS_CHECK { connect_timeout 2\n type a\n name www.example.com }")
    assert (check.type, check.query_type, check.query_name, check.timeout) == ("dns", "A", "www.example.com", 2.0)
    assert check.fall == 4  # DNS_CHECK's retry default is 3
    assert not conv.unmapped
    conv, check, table = conv_of(tmp_path, "DNS_CHECK { }")
    assert (check.query_type, check.query_name) == ("SOA", ".")  # keepalived's defaults are the model's
    assert "query_type" not in table


def test_udp_check_payload_and_require_reply(tmp_path) -> None:
    conv, check, _ = conv_of(tmp_path, "UDP_CHECK { payload 70 696e 67 a\n require_reply }", port=9)
    assert (check.type, check.send, check.require_reply) == ("udp", b"ping\n", True)
    assert not conv.unmapped
    conv, check, _ = conv_of(tmp_path, "UDP_CHECK { payload 7001\n }", port=9)
    assert check.require_reply is False  # keepalived: silence passes without require_reply


def test_udp_check_what_is_not_imported_is_listed(tmp_path) -> None:
    conv, check, _ = conv_of(tmp_path, "UDP_CHECK {\n payload ff00\n require_reply 0a0b\n max_reply_length 10\n }",
                             port=9)
    found = notes(conv)
    assert found[("keepalived.conf", 7)].startswith("payload: a payload with bytes above 0x7f")
    assert found[("keepalived.conf", 8)].startswith("require_reply: the reply's expected bytes are not imported")
    assert found[("keepalived.conf", 9)].startswith("max_reply_length: reply length bounds are not supported")
    assert check.send is None and check.require_reply is True
    conv, _, _ = conv_of(tmp_path, "UDP_CHECK {\n }", port=9)
    assert [r.reason for r in conv.remarks] == ["no payload: keepalived sends random bytes, directord an empty "
                                                "datagram"]


def test_ping_check_has_no_port_even_for_port_zero_real_servers(tmp_path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("""virtual_server fwmark 7 {
    lb_algo rr
    lb_kind DR
    real_server 10.0.0.1 0 {
        PING_CHECK { retry 4 }
    }
}
""")
    conv = convert(str(path))
    config, _ = imported(conv, str(path))
    check = config.virtual_servers[0].check
    assert (check.type, check.fall, check.port) == ("ping", 5, None)


def test_smtp_check(tmp_path) -> None:
    conv, check, _ = conv_of(tmp_path, 'SMTP_CHECK {\n connect_timeout 30\n helo_name "lb1.example.net"\n }',
                             protocol="TCP", port=25)
    assert (check.type, check.helo_name, check.timeout) == ("smtp", "lb1.example.net", 30.0)
    assert not conv.unmapped
    conv, check, _ = conv_of(tmp_path, "SMTP_CHECK {\n host {\n connect_ip 10.0.0.9\n }\n }", protocol="TCP",
                             port=25)
    assert notes(conv)[("keepalived.conf", 7)].startswith("host: the old SMTP_CHECK host { } block")


def test_hex_strings_as_keepalived_reads_them() -> None:
    assert _hex_bytes("Ab12f 3 456 546443123") == bytes.fromhex("AB120F0345065464431203")
    assert _hex_bytes("zz") is None
