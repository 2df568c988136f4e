"""auth_type / auth_pass: VRRPv2 authentication as keepalived has it, and check-config's lines about it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from director.config.advice import config_warnings
from director.config.diff import vrrp_changes
from director.config.load import ConfigError, parse_config
from director.config.locate import SourceMap
from director.config.problems import render

HEAD = '[[vrrp_instance]]\nname = "VI_1"\ninterface = "eth0"\nvrid = 51\nvirtual_ips = ["{vip}"]\n'


def text(extra: str, vip: str = "192.0.2.10/24") -> str:
    return HEAD.format(vip=vip) + extra


def lines(extra: str, vip: str = "192.0.2.10/24") -> list[str]:
    """check-config's error lines for the instance, as `LINE: key: reason`."""
    source = text(extra, vip)
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(source), "f", SourceMap(source))
    return [line.removeprefix("f:") for line in info.value.lines]


def test_pass_and_ah_load() -> None:
    for kind in ("pass", "ah"):
        source = text(f'version = 2\nauth_type = "{kind}"\nauth_pass = "1111"\n')
        vi = parse_config(tomllib.loads(source)).vrrp_instances[0]
        assert (vi.auth_type, vi.auth_pass) == (kind, "1111")
    plain = parse_config(tomllib.loads(text(""))).vrrp_instances[0]
    assert (plain.auth_type, plain.auth_pass) == (None, None)


def test_the_password_stays_out_of_the_repr() -> None:
    vi = parse_config(tomllib.loads(text('version = 2\nauth_type = "pass"\nauth_pass = "s3cr3t"\n'))).vrrp_instances[0]
    assert "s3cr3t" not in repr(vi) and "auth_type='pass'" in repr(vi)


def test_version_3_has_no_authentication() -> None:
    """The default version is 3: one line, naming the file, the line, the key and the reason."""
    assert lines('auth_type = "pass"\nauth_pass = "1111"\n') == [
        '6: vrrp_instance "VI_1".auth_type: VRRP version 3 has no authentication (RFC 5798 removed it): '
        "set version = 2 to authenticate with a version-2 peer, or remove auth_type and auth_pass"]
    assert len(lines('version = 3\nauth_type = "ah"\n')) == 1


def test_ipv6_cannot_authenticate() -> None:
    assert lines('auth_type = "ah"\nauth_pass = "1111"\n', vip="fd00::10/64") == [
        '6: vrrp_instance "VI_1".auth_type: VRRP authentication exists only in version 2, which carries IPv4 '
        "only: an IPv6 instance cannot authenticate"]
    assert lines('version = 2\nauth_type = "ah"\nauth_pass = "1111"\n', vip="fd00::10/64") == [
        '6: vrrp_instance "VI_1".version: VRRPv2 carries IPv4 only; use version = 3 for IPv6']


def test_ah_is_multicast_only() -> None:
    assert lines('version = 2\nauth_type = "ah"\nauth_pass = "1111"\nunicast_peers = ["192.0.2.2"]\n') == [
        '7: vrrp_instance "VI_1".auth_type: AH is supported over multicast only: use auth_type = "pass" with '
        "unicast_peers"]
    parse_config(tomllib.loads(text('version = 2\nauth_type = "pass"\nauth_pass = "1111"\n'
                                    'unicast_peers = ["192.0.2.2"]\n')))


@pytest.mark.parametrize(("extra", "expected"), [
    ('version = 2\nauth_type = "pass"\nauth_pass = ""\n',
     '8: vrrp_instance "VI_1".auth_pass: must not be empty (keepalived then runs without authentication; '
     "directord refuses it)"),
    ('version = 2\nauth_type = "pass"\n',
     'vrrp_instance "VI_1".auth_pass: is required with auth_type = "pass"'),
    ('version = 2\nauth_pass = "1111"\n',
     '7: vrrp_instance "VI_1".auth_pass: has no effect without auth_type ("pass" or "ah")'),
    ('version = 2\nauth_type = "PASS"\nauth_pass = "1111"\n',
     '7: vrrp_instance "VI_1".auth_type: "PASS" is not one of pass, ah (did you mean "pass"?)'),
    ('version = 2\nauth_type = "pass"\nauth_pass = "a\\u0000b"\n',
     '8: vrrp_instance "VI_1".auth_pass: must not contain a NUL character'),
    ('version = 2\nauth_type = "pass"\nauth_pass = 1111\n',
     '8: vrrp_instance "VI_1".auth_pass: must be a string, got an integer'),
], ids=["empty", "missing", "without-type", "keepalived-spelling", "nul", "integer"])
def test_each_bad_setting_is_one_line(extra: str, expected: str) -> None:
    got = lines(extra)
    assert len(got) == 1 and got[0].endswith(expected), got


def warnings(extra: str) -> list[str]:
    source = text(extra)
    data = tomllib.loads(source)
    return render(config_warnings(parse_config(data, "f")), "f", data, SourceMap(source), "warning: ")


def test_a_password_longer_than_8_bytes_is_a_warning_as_keepalived_truncates_it() -> None:
    assert warnings('version = 2\nauth_type = "pass"\nauth_pass = "ExAmpl3P@ssw0rd!"\n') == [
        'f:8: warning: vrrp_instance "VI_1".auth_pass: is 16 bytes long: VRRP carries 8, so only the first 8 '
        "count (keepalived truncates it alike)"]
    assert warnings('version = 2\nauth_type = "ah"\nauth_pass = "12345678"\n') == []


def test_a_reload_says_the_password_changed_but_not_what_it_is() -> None:
    def instances(password: str) -> tuple:
        return parse_config(tomllib.loads(text(f'version = 2\nauth_type = "pass"\nauth_pass = "{password}"\n'))
                            ).vrrp_instances
    assert vrrp_changes(instances("old-one"), instances("new-one")) == ["change vrrp_instance VI_1: auth_pass changed"]


def test_check_config_prints_the_v3_line_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "directord.toml"
    config.write_text(text('auth_type = "pass"\nauth_pass = "1111"\n'))
    proc = subprocess.run([sys.executable, "-m", "director.cli", "check-config", "--no-host-checks", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f'{config}:6: vrrp_instance "VI_1".auth_type: VRRP version 3 has no authentication (RFC 5798 removed it): '
        "set version = 2 to authenticate with a version-2 peer, or remove auth_type and auth_pass"]
