"""ldirectord's checktype=ping, service=dns and service=smtp (also guessed from ports 53 and 25)
import as directord's ping, dns and smtp checks; the dns expectation finds `receive` in the answer."""

from __future__ import annotations

import re
from pathlib import Path

from director.importer.ldirectord import convert
from tests.importer.helpers import imported, notes


def check_of(tmp_path: Path, body: str):
    path = tmp_path / "ldirectord.cf"
    path.write_text("checktimeout=3\nnegotiatetimeout=4\n" + body)
    conv = convert(str(path))
    config, _ = imported(conv, str(path))
    return conv, config.virtual_servers[0].check


def test_service_dns_request_and_receive(tmp_path) -> None:
    conv, check = check_of(tmp_path, 'virtual=192.0.2.53:53\n\treal=10.0.0.1:53 gate\n\tservice=dns\n'
                                     '\trequest="www.example.com"\n\treceive="192.0.2.7"\n\tprotocol=udp\n')
    assert (check.type, check.query_name, check.query_type, check.timeout) == ("dns", "www.example.com", "A", 4.0)
    assert not conv.unmapped
    rendered = "www.example.com. 300 IN AAAA 2001:db8::1\nwww.example.com. 300 IN A 192.0.2.7"
    assert re.search(check.expect, rendered)
    assert not re.search(check.expect, rendered.replace("192.0.2.7", "192.0.2.70"))
    assert not re.search(check.expect, rendered.replace("192.0.2.7", "192x0x2x7"))


def test_port_53_guesses_dns_and_a_missing_request_is_listed(tmp_path) -> None:
    conv, check = check_of(tmp_path, "virtual=192.0.2.53:53\n\treal=10.0.0.1:53 gate\n\tprotocol=udp\n"
                                     "\tchecktype=negotiate\n")
    assert (check.type, check.query_name) == ("dns", ".")
    assert "without request=" in notes(conv)[("ldirectord.cf", 6)]


def test_service_smtp_and_port_25(tmp_path) -> None:
    conv, check = check_of(tmp_path, "virtual=192.0.2.25:25\n\treal=10.0.0.2:25 masq\n")
    assert (check.type, check.timeout) == ("smtp", 4.0) and not conv.unmapped
    conv, check = check_of(tmp_path, "virtual=192.0.2.25:2525\n\treal=10.0.0.2:2525 masq\n\tservice=smtp\n")
    assert check.type == "smtp"


def test_checktype_ping_without_port_on_fwmark(tmp_path) -> None:
    conv, check = check_of(tmp_path, "virtual=7\n\treal=10.0.0.3 gate\n\tchecktype=ping\n")
    assert (check.type, check.timeout, check.port) == ("ping", 3.0, None)
    assert not conv.unmapped
