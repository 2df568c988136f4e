"""Config loading: the contract in DESIGN.md parses, and every error names file, key and reason."""

from __future__ import annotations

import contextlib
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director.cli import main
from director.config.load import ConfigError, load_config
from director.config.read import parse_duration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directord.toml"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "directord.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert all(re.match(rf"{re.escape(path)}(:\d+)?: ", line) for line in info.value.lines), info.value.lines
    return [re.sub(rf"^{re.escape(path)}(:\d+)?: ", "", line) for line in info.value.lines]


def test_design_example_loads_with_every_contract_key() -> None:
    config = load_config(str(EXAMPLE))
    assert config.global_.router_id == "lb1"
    assert config.global_.reconcile_interval == 5.0
    assert (config.ipvs.timeout_tcp, config.ipvs.timeout_tcpfin, config.ipvs.timeout_udp) == (900, 120, 300)
    assert config.ipvs.sync_daemon.interface == "eth1" and config.ipvs.sync_daemon.syncid == 51
    vs = config.virtual_servers[0]
    assert (vs.name, str(vs.address), vs.port, vs.protocol, vs.scheduler, vs.method) == (
        "web", "192.0.2.10", 80, "tcp", "wlc", "nat")
    assert vs.sorry_server.endpoint == "10.0.0.99:80"
    assert vs.check.type == "http" and vs.check.expect_status == ((200, 200),)
    assert [rs.weight for rs in vs.real_servers] == [10, 10]
    vi = config.vrrp_instances[0]
    assert (vi.vrid, vi.priority, vi.version, vi.advert_interval) == (51, 150, 3, 1.0)
    assert vi.garp.interval == 0.1 and vi.track_interfaces[0].weight == -50
    assert vi.notify == ("/usr/local/bin/on-vrrp-change",)


@pytest.mark.parametrize(("text", "seconds"), [
    ("100ms", 0.1), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), ("1m30s", 90.0), ("0s", 0.0), ("1.5s", 1.5),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "2 s", "s", "1d", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_feature_parses(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[virtual_server]]
        name = "v6-sh"
        address = "2001:db8::10"
        port = 443
        protocol = "sctp"
        scheduler = "sh"
        scheduler_flags = ["sh-fallback", "sh-port"]
        method = "dr"
        persistence_timeout = "300s"
        persistence_netmask = 64
          [[virtual_server.real_server]]
          address = "2001:db8::11"
          weight = 65535
          upper_threshold = 100
          lower_threshold = 50
        [[virtual_server]]
        name = "mark"
        fwmark = 10
        family = "ipv6"
        scheduler = "mh"
        scheduler_flags = ["mh-port"]
        method = "tun"
          [[virtual_server.real_server]]
          address = "2001:db8::21"
          tunnel_type = "gue"
          tunnel_port = 6080
          tunnel_checksum = "csum"
          [[virtual_server.real_server]]
          address = "2001:db8::22"
          method = "dr"
          weight = 0
        [[virtual_server]]
        name = "dns"
        address = "192.0.2.53"
        port = 53
        protocol = "udp"
        one_packet = true
        scheduler = "twos"
          [[virtual_server.real_server]]
          address = "10.0.0.53"
          method = "nat"
    """)
    config = load_config(path)
    v6, mark, dns = config.virtual_servers
    assert v6.family == 6 and v6.persistence_netmask == 64 and v6.scheduler_flags == ("sh-fallback", "sh-port")
    assert v6.real_servers[0].port == 443 and v6.real_servers[0].upper_threshold == 100
    assert mark.fwmark == 10 and mark.family == 6 and mark.address is None
    assert mark.real_servers[0].tunnel_type == "gue" and mark.real_servers[1].method == "dr"
    assert dns.one_packet and dns.protocol == "udp"


def test_errors_name_key_path_and_reason(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, """
        [global]
        routr_id = "x"
        [[virtual_server]]
        name = "web"
        address = "192.0.2.10"
        port = 80
        scheduler = "wlcc"
          [[virtual_server.real_server]]
          address = "10.0.0.1"
          weight = 70000
          [[virtual_server.real_server]]
          address = "10.0.0.2"
          wieght = 3
    """)
    assert 'global.routr_id: unknown key (did you mean "router_id"?)' in lines
    assert any(line.startswith('virtual_server "web".scheduler: "wlcc" is not one of') and 'did you mean "wlc"' in line
               for line in lines)
    assert 'virtual_server "web".real_server[0].weight: must be in 0..65535, got 70000' in lines
    assert 'virtual_server "web".real_server[1].wieght: unknown key (did you mean "weight"?)' in lines


@pytest.mark.parametrize(("body", "expected"), [
    ('[[virtual_server]]\nname="a"\nport=80\n', "virtual_server \"a\".address: is required"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nfwmark=3\n', "virtual_server \"a\".fwmark: set either"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\nscheduler="sh"\nscheduler_flags=["mh-port"]\n',
     "virtual_server \"a\".scheduler_flags[0]: \"mh-port\" applies only to the mh scheduler"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\nprotocol="tcp"\none_packet=true\n',
     "virtual_server \"a\".one_packet: applies only to udp services"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[[virtual_server.real_server]]\n'
     'address="2001:db8::1"\n', "virtual_server \"a\".real_server[0].address: 2001:db8::1 is IPv6"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[[virtual_server.real_server]]\n'
     'address="10.0.0.1"\nport=8080\nmethod="dr"\n', "virtual_server \"a\".real_server[0].port: dr cannot change"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[[virtual_server.real_server]]\n'
     'address="10.0.0.1"\nupper_threshold=5\nlower_threshold=9\n',
     "virtual_server \"a\".real_server[0].lower_threshold: 9 is above upper_threshold 5"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\npersistence_timeout="1500ms"\n',
     "virtual_server \"a\".persistence_timeout: must be a multiple of 1s"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\nslow_start=10\n',
     'virtual_server "a".slow_start: must be a duration string such as "2s", got an integer'),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="exec"\n'
     'command="/bin/check --x"\n', "virtual_server \"a\".check.command: must be an argv list"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="tcp"\n'
     'path="/x"\n', 'virtual_server "a".check.path: applies only to http/https checks, not type "tcp"'),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="http"\n'
     'expect_status=["2xx"]\n', "virtual_server \"a\".check.expect_status[0]: must be a status code"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="http"\n'
     'expect_body="(unclosed"\n', "virtual_server \"a\".check.expect_body: invalid regular expression"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="http"\n'
     'expect_body="(a+)+$"\n', "virtual_server \"a\".check.expect_body: a repeat inside a repeat can try"),
    # found by tests/fuzz/test_config.py: re.compile raised OverflowError, not re.error
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="http"\n'
     'expect_body="a{4294967296}"\n', "virtual_server \"a\".check.expect_body: invalid regular expression: the "
     "repetition number is too large"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="tcp"\n'
     'expect="x{1,99999999999}"\n', "virtual_server \"a\".check.expect: invalid regular expression: the repetition"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="http"\n'
     'path="/health check"\n', "virtual_server \"a\".check.path: must not contain spaces or control characters"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\ntype="http"\n'
     'host="a\\r\\nX-Injected: 1"\n', "virtual_server \"a\".check.host: must not contain spaces or control"),
    ('[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=5060\nprotocol="udp"\n[virtual_server.check]\n'
     'type="sip"\nsip_uri="sip:a\\r\\nVia: x"\n', "virtual_server \"a\".check.sip_uri: must not contain"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=0\nvirtual_ips=["192.0.2.1/24"]\n',
     "vrrp_instance \"v\".vrid: must be in 1..255, got 0"),
    ('[global]\nvrrp_realtime_priority=100\n', "global.vrrp_realtime_priority: must be in 0..99, got 100"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nversion=2\nadvert_interval="1500ms"\n'
     'virtual_ips=["192.0.2.1/24"]\n', "vrrp_instance \"v\".advert_interval: must be a multiple of 1s"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nadvert_interval="15ms"\nvirtual_ips=["192.0.2.1"]\n',
     "vrrp_instance \"v\".advert_interval: must be a multiple of 10ms"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nversion=2\nvirtual_ips=["2001:db8::1/64"]\n',
     "vrrp_instance \"v\".version: VRRPv2 carries IPv4 only"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nvirtual_ips=["192.0.2.1/24", "2001:db8::1"]\n',
     "vrrp_instance \"v\".virtual_ips: mixes IPv4 and IPv6"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nvirtual_ips=["192.0.2.1"]\n'
     'track_virtual_servers=[{name="nope", weight=-10}]\n',
     'vrrp_instance "v".track_virtual_servers[0].name: no virtual_server is named "nope"'),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nvirtual_ips=["192.0.2.1"]\nnotify="/bin/x $STATE"\n',
     "vrrp_instance \"v\".notify: must be a program path or an argv list"),
    ('[[vrrp_instance]]\nname="v"\ninterface="eth0"\nvrid=1\nvirtual_ips=["192.0.2.1"]\n'
     '[[vrrp_instance]]\nname="w"\ninterface="eth0"\nvrid=1\nvirtual_ips=["192.0.2.2"]\n',
     "vrrp_instance \"w\".vrid: vrid 1 on eth0 (IPv4) is already used by an earlier vrrp_instance (line 1)"),
    ('[global]\nmetrics_listen="9612"\n', 'global.metrics_listen: "9612" must be "HOST:PORT"'),
    ("[ipvs]\ntimeouts = { tcp = \"0s\" }\n", "ipvs.timeouts.tcp: must be between"),
    ("[bogus]\n", 'bogus: unknown key'),
    ('[[virtual_server]]\nname="m"\nfwmark=5\n[virtual_server.check]\ntype="http"\n[[virtual_server.real_server]]\n'
     'address="10.0.0.1"\n', "virtual_server \"m\".check.port: is required: http checks need a port"),
])
def test_each_bad_value_is_reported(tmp_path: Path, body: str, expected: str) -> None:
    lines = errors_of(tmp_path, body)
    assert any(line.startswith(expected) for line in lines), lines


def test_a_regex_nested_at_any_depth_is_an_error_line_or_loads(tmp_path: Path) -> None:
    """Found by tests/fuzz/test_config.py: groups nested deep enough raised RecursionError
    from re.compile, and a little less deep from the backtracking check that runs after it
    (how deep depends on the stack, so every depth up to well past both is tried)."""
    for depth in range(10, 1500, 10):
        path = write(tmp_path, '[[virtual_server]]\nname="a"\naddress="192.0.2.1"\nport=80\n[virtual_server.check]\n'
                     f'type="http"\nexpect_body="{"(" * depth}a{")" * depth}"\n')
        try:
            load_config(path)
        except ConfigError as exc:
            assert exc.lines == [f'{path}:7: virtual_server "a".check.expect_body: invalid regular expression: '
                                 "groups nested too deeply"], (depth, exc.lines)


def test_errors_come_in_file_order_with_their_lines(tmp_path: Path) -> None:
    """Readers check [global], then virtual servers, then instances; a user reads top down."""
    path = write(tmp_path, """\
        [[vrrp_instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 300
        virtual_ips = ["192.0.2.10/24"]
        track_virtual_servers = [{ name = "web", weight = -10 }, { name = "nope", weight = -5 }]
        [[virtual_server]]
        name = "web"
        address = "192.0.2.10"
        port = 80
        scheduler = "x"
          [virtual_server.check]
          rise = 0
          [[virtual_server.real_server]]
          address = "10.0.0.1"
          [[virtual_server.real_server]]
          address = "10.0.0.1"
        [[virtual_server]]
        name = "web"
        address = "192.0.2.11"
        port = 80
        [global]
        routr_id = "x"
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [line.split(": ", 1)[0].removeprefix(path) for line in info.value.lines] == [
        ":4", ":6", ":11", ":13", ":16", ":19", ":23"]
    assert [line.split(": ")[1] for line in info.value.lines] == [
        'vrrp_instance "VI_1".vrid', 'vrrp_instance "VI_1".track_virtual_servers[1].name',
        "virtual_server[0].scheduler", "virtual_server[0].check.rise", "virtual_server[0].real_server[1]",
        "virtual_server[1].name", "global.routr_id"]
    assert info.value.lines[5].endswith("web is already used by an earlier virtual_server (line 7)")


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, "[global\n")
    assert len(lines) == 1 and lines[0].startswith("invalid TOML:")


def test_a_line_break_in_a_value_or_key_stays_on_its_problem_line(tmp_path: Path) -> None:
    """Found by tests/fuzz/test_config.py: a value or quoted key holding CR LF (or U+2028,
    which splitlines also breaks at) split its problem over two lines, the second without
    FILE:LINE, so a config could print a line that looks like another problem."""
    lines = errors_of(tmp_path, '[global]\nmetrics_listen = "x\\r\\nfile:1: forged"\n"a\\u2028b" = 1\n')
    assert sorted(lines) == [r"global.a\u2028b: unknown key",
                             r'global.metrics_listen: "x\r\nfile:1: forged" must be "HOST:PORT", "[V6]:PORT" or "" to '
                             "disable"]
    assert all(line.splitlines() == [line] for line in lines)


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "directord.toml"
    path.write_bytes(b'[global]\nrouter_id = "lb\xa91"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.lines == [f"{path}: invalid TOML: not UTF-8 text (byte 24)"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_load_or_give_error_lines(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """Whatever the file holds, the loader returns a Config or raises ConfigError."""
    path = tmp_path_factory.mktemp("fuzz") / "directord.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_config(str(path))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mutated_example_loads_or_gives_error_lines(tmp_path_factory: pytest.TempPathFactory,
                                                       data: st.DataObject) -> None:
    """The example with lines dropped, swapped or their values replaced reaches the
    validator, not only the TOML parser; it must never raise anything but ConfigError."""
    lines = EXAMPLE.read_text().splitlines()
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(lines) - 1))
        key = lines[at].split("=", 1)[0] if "=" in lines[at] else None
        choice = data.draw(st.sampled_from(["drop", "swap", "value"] if key else ["drop", "swap"]))
        if choice == "drop":
            del lines[at]
        elif choice == "swap":
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            value = data.draw(st.sampled_from(['""', "0", "-1", "99999999", "true", '"x"', "[]", "{}", '["a"]',
                                               '"10ms"', '"::1"', "1.5", '"999.1.1.1/33"']))
            lines[at] = f"{key}= {value}"
        if not lines:
            break
    path = tmp_path_factory.mktemp("fuzz") / "directord.toml"
    path.write_text("\n".join(lines) + "\n")
    with contextlib.suppress(ConfigError):
        load_config(str(path))


def test_check_config_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--no-host-checks", "-c", str(EXAMPLE)]) == 0
    bad = write(tmp_path, '[[virtual_server]]\nname = "a"\naddress = "192.0.2.1"\nport = 99999\n')
    assert main(["check-config", "--no-host-checks", "-c", bad]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'{bad}:4: virtual_server "a".port: must be in 0..65535, got 99999']
    assert main(["check-config", "-c", str(tmp_path / "missing.toml")]) == 1


def test_host_checks_find_missing_interface_and_false_owner(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, """
        [[vrrp_instance]]
        name = "v"
        interface = "nosuchif0"
        vrid = 1
        priority = 255
        virtual_ips = ["192.0.2.77/24"]
    """)
    assert main(["check-config", "-c", path]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[:2] == [
        f'{path}:4: vrrp_instance "v".interface: no interface named "nosuchif0" on this host',
        f'{path}:6: vrrp_instance "v".priority: 255 is reserved for the address owner, and none of virtual_ips '
        "is configured on this host"]
    assert main(["check-config", "--no-host-checks", "-c", path]) == 0


@pytest.mark.parametrize(("text", "endpoint"), [
    ("10.0.0.99:8080", "10.0.0.99:8080"), ("10.0.0.99", "10.0.0.99:80"),
    ("[2001:db8::99]:8080", "[2001:db8::99]:8080"), ("2001:db8::99", "[2001:db8::99]:80"),
])
def test_sorry_server_forms(tmp_path: Path, text: str, endpoint: str) -> None:
    family = "2001:db8::10" if endpoint.startswith("[") else "192.0.2.10"
    path = write(tmp_path, f'[[virtual_server]]\nname = "a"\naddress = "{family}"\nport = 80\n'
                           f'sorry_server = "{text}"\n')
    assert load_config(path).virtual_servers[0].sorry_server.endpoint == endpoint


HOOKED = """
[global]
notify_fifo = "/run/directord/notify.fifo"

[[vrrp_instance]]
name = "front"
interface = "eth0"
vrid = 1
virtual_ips = ["192.0.2.10/24"]
sync_group = "edge"
notify = ["/usr/local/bin/on-vrrp", "--site", "a"]
notify_arguments = "keepalived"
notify_master = "/usr/local/bin/to-master"
notify_stop = ["/usr/local/bin/stopping", "now"]

[[vrrp_sync_group]]
name = "edge"
notify_fault = "/usr/local/bin/group-fault"
"""


def test_notify_hooks_groups_and_the_fifo_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, HOOKED))
    [vi], [group] = config.vrrp_instances, config.vrrp_sync_groups
    assert (vi.notify_arguments, vi.notify_master, vi.notify_stop) == (
        "keepalived", ("/usr/local/bin/to-master",), ("/usr/local/bin/stopping", "now"))
    assert vi.sync_group_hooks == group and group.notify_fault == ("/usr/local/bin/group-fault",)
    assert vi.notify_fifo == config.global_.notify_fifo == "/run/directord/notify.fifo"


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('name = "edge"\nnotify_fault', 'name = "other"\nnotify_fault',
     'vrrp_sync_group "other".name: no vrrp_instance has sync_group = "other"'),
    ('notify_master = "/usr/local/bin/to-master"', 'notify_master = "to-master --now"',
     "vrrp_instance \"front\".notify_master: must be a program path or an argv list"),
    ('"/run/directord/notify.fifo"', '"notify.fifo"', "global.notify_fifo: must be an absolute path"),
])
def test_bad_hooks_are_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert any(expected in line for line in errors_of(tmp_path, HOOKED.replace(old, new)))
