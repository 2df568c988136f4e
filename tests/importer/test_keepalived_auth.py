"""keepalived's `authentication { auth_type PASS|AH ; auth_pass X }` imported as keepalived runs it."""

from __future__ import annotations

import pytest

from director.config.advice import config_warnings
from director.importer.keepalived import convert
from tests.importer.helpers import imported, notes
from tests.importer.test_keepalived import remarks, write

INSTANCE = """
{globals}vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
{body}
  authentication {{
{auth}
  }}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""


def imported_instance(tmp_path, auth: str, body: str = "", vip: str = "192.0.2.10/24", globals_: str = ""):
    conv = convert(write(tmp_path, INSTANCE.format(globals=globals_, body=body, auth=auth, vip=vip)))
    config, _ = imported(conv, "keepalived")
    return conv, config


@pytest.mark.parametrize(("auth_type", "kind"), [("PASS", "pass"), ("AH", "ah")])
def test_pass_and_ah_carry_over_exactly(tmp_path, auth_type: str, kind: str) -> None:
    conv, config = imported_instance(tmp_path, f"    auth_type {auth_type}\n    auth_pass 1111  # shared")
    instance = config.vrrp_instances[0]
    assert (instance.version, instance.auth_type, instance.auth_pass) == (2, kind, "1111")
    assert not conv.unmapped and not conv.remarks


def test_a_long_password_is_kept_whole_and_truncated_alike(tmp_path) -> None:
    """keepalived: "Truncating auth_pass to 8 characters"; directord uses the same 8 bytes and
    check-config warns, so the import keeps the source's value and only remarks on it."""
    conv, config = imported_instance(tmp_path, "    auth_type PASS\n    auth_pass ExAmpl3P@ssw0rd!")
    assert config.vrrp_instances[0].auth_pass == "ExAmpl3P@ssw0rd!"
    assert not conv.unmapped
    assert remarks(conv)[("keepalived.conf", 8)].startswith("auth_pass: longer than 8 bytes")
    assert [p.path[-1] for p in config_warnings(config)] == ["auth_pass"]


@pytest.mark.parametrize(("globals_", "body", "vip", "auth", "line", "said"), [
    ("global_defs {\n  vrrp_version 3\n}\n", "", "192.0.2.10/24", "    auth_type PASS\n    auth_pass 1111", 9,
     "authentication: VRRP version 3 has no authentication: keepalived ignores the block"),
    ("", "  version 3", "192.0.2.10/24", "    auth_type AH\n    auth_pass 1111", 6,
     "authentication: VRRP version 3 has no authentication"),
    ("", "", "2001:db8::10/64", "    auth_type PASS\n    auth_pass 1111", 6,
     "authentication: VRRP version 3 has no authentication"),  # IPv6: version 3
    ("", "", "192.0.2.10/24", "    auth_type PASS", 6, "authentication: no auth_pass: keepalived ignores the block"),
    ("", "", "192.0.2.10/24", "    auth_type PASS\n    auth_pass", 6, "authentication: no auth_pass"),
    ("", "", "192.0.2.10/24", "    auth_type pass\n    auth_pass 1111", 7,
     "auth_type: 'pass' is not PASS or AH (keepalived compares case and all)"),
], ids=["global-v3", "instance-v3", "ipv6", "no-pass", "empty-pass", "lower-case"])
def test_what_keepalived_ignores_is_left_out_with_a_remark(tmp_path, globals_: str, body: str, vip: str, auth: str,
                                                           line: int, said: str) -> None:
    """keepalived runs these instances without authentication (2.2.7, seen in a namespace):
    the import does the same, and says why in the header."""
    conv, config = imported_instance(tmp_path, auth, body=body, vip=vip, globals_=globals_)
    instance = config.vrrp_instances[0]
    assert (instance.auth_type, instance.auth_pass) == (None, None)
    assert not conv.unmapped
    assert remarks(conv)[("keepalived.conf", line)].startswith(said), remarks(conv)


def test_ah_over_unicast_is_listed_as_not_carried_over(tmp_path) -> None:
    body = "  unicast_src_ip 192.0.2.2\n  unicast_peer {\n    192.0.2.3\n  }"
    conv, config = imported_instance(tmp_path, "    auth_type AH\n    auth_pass 1111", body=body)
    assert config.vrrp_instances[0].auth_type is None
    assert notes(conv)[("keepalived.conf", 9)].startswith("authentication: directord does AH over multicast only")
    conv, config = imported_instance(tmp_path, "    auth_type PASS\n    auth_pass 1111", body=body)
    assert config.vrrp_instances[0].auth_type == "pass" and not conv.unmapped


def test_other_directives_in_the_block_follow_keepalived(tmp_path) -> None:
    """keepalived knows only auth_type and auth_pass there: a word it does not know anywhere it
    ignores (a remark), a directive of elsewhere is listed."""
    conv, config = imported_instance(tmp_path, "    auth_type PASS\n    auth_pass 1111\n    auth_key x\n    priority 9")
    assert config.vrrp_instances[0].auth_type == "pass"
    assert remarks(conv)[("keepalived.conf", 9)].startswith("auth_key: not a keepalived directive")
    assert notes(conv)[("keepalived.conf", 10)].startswith("priority: no directord equivalent")
