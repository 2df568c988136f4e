"""Loading `[[vrrp_script]]`, `[[track_file]]` and the instances' references to them."""

from __future__ import annotations

from typing import Any

import pytest

from director.config.load import ConfigError, parse_config
from director.config.model import TrackFile, TrackFileConfig, TrackScript, VrrpScriptConfig

INSTANCE = {"name": "VI_1", "interface": "eth0", "vrid": 1, "virtual_ips": ["192.0.2.10/24"]}
SCRIPT = {"name": "chk", "command": ["/usr/local/bin/check-haproxy", "--quick"]}
FILE = {"name": "prio", "path": "/run/directord/prio"}


def load(**tables: Any) -> Any:
    return parse_config(tables)


def errors(**tables: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(tables, "f")
    return [line.removeprefix("f: ") for line in info.value.lines]


def test_a_script_with_every_key() -> None:
    config = load(vrrp_script=[SCRIPT | {"interval": "2s", "timeout": "500ms", "weight": -20, "rise": 3, "fall": 2,
                                         "init_fail": True, "user": "nobody", "group": "nogroup"}])
    assert config.vrrp_scripts == (VrrpScriptConfig("chk", ("/usr/local/bin/check-haproxy", "--quick"), 2.0, 0.5,
                                                    -20, 3, 2, True, "nobody", "nogroup"),)


def test_a_file_with_every_key() -> None:
    config = load(track_file=[FILE | {"weight": -3, "interval": "250ms"}])
    assert config.track_files == (TrackFileConfig("prio", "/run/directord/prio", -3, 0.25),)


def test_a_reference_takes_the_objects_weight_unless_it_sets_its_own() -> None:
    config = load(vrrp_script=[SCRIPT | {"weight": -20}, {"name": "up", "command": ["/bin/true"], "weight": 5}],
                  track_file=[FILE | {"weight": 2}],
                  vrrp_instance=[INSTANCE | {"track_scripts": ["chk", {"name": "up", "weight": 0}],
                                             "track_files": [{"name": "prio"}]}])
    vi = config.vrrp_instances[0]
    assert vi.track_scripts == (TrackScript("chk", -20), TrackScript("up", 0))
    assert vi.track_files == (TrackFile("prio", 2),)


def test_reverse_and_init_file_load_and_a_reference_takes_the_objects_reverse_unless_it_sets_its_own() -> None:
    config = load(vrrp_script=[SCRIPT | {"weight": 10, "reverse": True}],
                  track_file=[FILE | {"reverse": True, "init_file": 5, "init_overwrite": True},
                              {"name": "other", "path": "/run/other", "init_file": -2}],
                  vrrp_instance=[INSTANCE | {"track_scripts": [{"name": "chk", "reverse": False}],
                                             "track_files": ["prio", {"name": "other", "reverse": True}]}])
    prio, other = config.track_files
    assert (prio.reverse, prio.init_file, prio.init_overwrite) == (True, 5, True)
    assert (other.reverse, other.init_file, other.init_overwrite) == (False, -2, False)
    assert config.vrrp_scripts[0].reverse is True
    vi = config.vrrp_instances[0]
    assert vi.track_scripts == (TrackScript("chk", 10, reverse=False),)
    assert vi.track_files == (TrackFile("prio", 1, reverse=True), TrackFile("other", 1, reverse=True))


def test_init_overwrite_without_init_file_and_a_non_boolean_reverse_are_named() -> None:
    assert errors(track_file=[FILE | {"init_overwrite": True, "reverse": 1}]) == [
        'track_file "prio".reverse: must be true or false, got an integer',
        'track_file "prio".init_overwrite: needs init_file (the value to write)']


def test_the_default_weights_are_keepaliveds() -> None:
    config = load(vrrp_script=[SCRIPT], track_file=[FILE],
                  vrrp_instance=[INSTANCE | {"track_scripts": ["chk"], "track_files": ["prio"]}])
    vi = config.vrrp_instances[0]
    assert (vi.track_scripts[0].weight, vi.track_files[0].weight) == (0, 1)  # script: fault; file: value x 1


def test_a_shell_string_is_refused_with_the_way_to_ask_for_a_shell() -> None:
    [line] = errors(vrrp_script=[{"name": "chk", "command": "pidof haproxy | grep -q ."}])
    assert line.startswith('vrrp_script "chk".command: must be an argv list')
    assert '["/bin/sh", "-c", "..."]' in line


@pytest.mark.parametrize(("table", "expected"), [
    ({"name": "chk"}, 'vrrp_script "chk".command: is required'),
    (SCRIPT | {"command": []}, 'vrrp_script "chk".command: must be a non-empty list of non-empty strings'),
    (SCRIPT | {"weight": 255}, 'vrrp_script "chk".weight: must be in -254..254, got 255'),
    (SCRIPT | {"rise": 0}, 'vrrp_script "chk".rise: must be in 1..1000, got 0'),
    (SCRIPT | {"interval": "1ms"}, 'vrrp_script "chk".interval: must be between 10ms and 3600s, got 1ms'),
    (SCRIPT | {"group": "adm"}, 'vrrp_script "chk".group: needs user (the group a user\'s script runs with)'),
    (SCRIPT | {"user": "a b"}, 'vrrp_script "chk".user: "a b" is not a user or group name'),
    (SCRIPT | {"iterval": "1s"}, 'vrrp_script "chk".iterval: unknown key (did you mean "interval"?)'),
    (SCRIPT | {"init_fail": 1}, 'vrrp_script "chk".init_fail: must be true or false, got an integer'),
], ids=lambda v: str(v)[:40])
def test_script_errors(table: dict[str, Any], expected: str) -> None:
    assert any(line.startswith(expected) for line in errors(vrrp_script=[table]))


@pytest.mark.parametrize(("table", "expected"), [
    ({"name": "prio"}, 'track_file "prio".path: is required'),
    (FILE | {"path": "run/prio"}, 'track_file "prio".path: must be an absolute path, got "run/prio"'),
    (FILE | {"weight": -255}, 'track_file "prio".weight: must be in -254..254, got -255'),
], ids=lambda v: str(v)[:40])
def test_track_file_errors(table: dict[str, Any], expected: str) -> None:
    assert expected in errors(track_file=[table])


def test_names_are_unique_per_kind() -> None:
    found = errors(vrrp_script=[SCRIPT, SCRIPT], track_file=[FILE, FILE | {"name": "chk"}])
    assert "vrrp_script[1].name: chk is already used by an earlier vrrp_script (vrrp_script[0])" in found
    assert len(found) == 1  # a file may share a script's name: the kinds are apart


@pytest.mark.parametrize(("references", "expected"), [
    ({"track_scripts": ["nope"]}, 'vrrp_instance "VI_1".track_scripts[0]: no vrrp_script is named "nope"'),
    ({"track_scripts": [{"name": "nope"}]},
     'vrrp_instance "VI_1".track_scripts[0].name: no vrrp_script is named "nope"'),
    ({"track_files": ["chk"]}, 'vrrp_instance "VI_1".track_files[0]: no track_file is named "chk"'),
    ({"track_scripts": ["chk", {"name": "chk", "weight": 2}]},
     'vrrp_instance "VI_1".track_scripts[1]: "chk" is listed twice'),
    ({"track_scripts": [{"name": "chk", "weight": 300}]},
     'vrrp_instance "VI_1".track_scripts[0].weight: must be in -254..254, got 300'),
    ({"track_scripts": [{"name": "chk", "wieght": 3}]},
     'vrrp_instance "VI_1".track_scripts[0].wieght: unknown key (did you mean "weight"?)'),
    ({"track_scripts": "chk"},
     'vrrp_instance "VI_1".track_scripts: must be a list of names or {name = "...", weight = N} tables'),
    ({"track_files": [3]}, 'vrrp_instance "VI_1".track_files[0]: must be a name or {name = "...", weight = N}'),
], ids=lambda v: str(v)[:50])
def test_reference_errors(references: dict[str, Any], expected: str) -> None:
    assert expected in errors(vrrp_script=[SCRIPT], track_file=[FILE], vrrp_instance=[INSTANCE | references])


def test_errors_carry_the_line(tmp_path: Any) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[[vrrp_script]]\nname = "chk"\ncommand = ["/bin/true"]\nrise = 0\n')
    from director.config.load import load_config

    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.lines == [f'{path}:4: vrrp_script "chk".rise: must be in 1..1000, got 0']


PROCESS = {"name": "hp", "process": "haproxy"}


def test_a_track_process_with_every_key() -> None:
    from director.config.model import TrackProcess, TrackProcessConfig

    config = load(track_process=[PROCESS | {"process": "/usr/sbin/haproxy", "args": ["-f"], "param_match": "initial",
                                            "full_command": True, "quorum": 2, "quorum_max": 4, "weight": -30,
                                            "fork_delay": "500ms", "terminate_delay": "2s", "interval": "200ms"}],
                  vrrp_instance=[INSTANCE | {"track_processes": ["hp"]}])
    assert config.track_processes == (TrackProcessConfig("hp", "/usr/sbin/haproxy", ("-f",), "initial", True, 2, 4,
                                                         -30, 0.5, 2.0, 0.2),)
    assert config.vrrp_instances[0].track_processes == (TrackProcess("hp", -30),)


@pytest.mark.parametrize(("table", "expected"), [
    ({"name": "hp"}, 'track_process "hp".process: is required'),
    (PROCESS | {"quorum": 3, "quorum_max": 2}, 'track_process "hp".quorum_max: 2 is below quorum 3'),
    (PROCESS | {"param_match": "partial"}, 'track_process "hp".param_match: needs args'),
    (PROCESS | {"param_match": "prefix", "args": []}, 'track_process "hp".param_match: "prefix" is not one of'),
    (PROCESS | {"args": "-f x"}, 'track_process "hp".args: must be a list of strings'),
    (PROCESS | {"process": ""}, 'track_process "hp".process: must be a process name'),
], ids=lambda v: str(v)[:40])
def test_track_process_errors(table: dict[str, Any], expected: str) -> None:
    assert any(line.startswith(expected) for line in errors(track_process=[table]))


def test_a_process_name_longer_than_the_kernel_keeps_is_warned_about() -> None:
    from director.config.advice import config_warnings
    from director.config.problems import render

    data = {"track_process": [PROCESS | {"process": "a-very-long-process-name"}],
            "vrrp_instance": [INSTANCE | {"track_processes": ["hp"]}]}
    lines = render(config_warnings(parse_config(data)), "f", data)
    assert ('f: track_process "hp".process: "a-very-long-process-name" is longer than the 15 bytes the kernel keeps '
            "of a process name, so it never matches one: set full_command = true to match argv[0]") in lines


# --- on the host (check-config without --no-host-checks) ------------------------------------------------


def test_check_config_refuses_scripts_that_cannot_run(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from director.cli import main

    private = tmp_path / "private-check"
    private.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(private, 0o700)  # root may run it, nobody may not
    plain = tmp_path / "plain"
    plain.write_text("not a program\n")
    lo_address = "127.0.0.2/8"
    path = tmp_path / "d.toml"
    path.write_text(f"""
[[vrrp_script]]
name = "missing"
command = ["/nonexistent/check", "-q"]

[[vrrp_script]]
name = "bare"
command = ["no-such-program-anywhere"]

[[vrrp_script]]
name = "plain"
command = ["{plain}"]

[[vrrp_script]]
name = "private"
command = ["{private}"]
user = "nobody"

[[vrrp_script]]
name = "nouser"
command = ["true"]
user = "no-such-user-x"

[[vrrp_script]]
name = "fine"
command = ["true"]
user = "nobody"

[[vrrp_instance]]
name = "VI_1"
interface = "lo"
vrid = 1
virtual_ips = ["{lo_address}"]
track_scripts = ["missing", "bare", "plain", "private", "nouser", "fine"]
""")
    assert main(["check-config", "-c", str(path)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": warning: " not in line]
    assert errors == [
        f'{path}:4: vrrp_script "missing".command: /nonexistent/check does not exist',
        f'{path}:8: vrrp_script "bare".command: no-such-program-anywhere does not exist on PATH '
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f'{path}:12: vrrp_script "plain".command: {plain} is not an executable file',
        f'{path}:16: vrrp_script "private".command: {private} is not an executable file by user nobody',
        f'{path}:22: vrrp_script "nouser".user: no user named "no-such-user-x" on this host',
    ]
    assert main(["check-config", "--no-host-checks", "-c", str(path)]) == 0


def test_check_config_warns_of_a_root_script_another_user_can_change(tmp_path: Any,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from director.cli import main

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # anyone may replace what is in it
    script = shared / "check"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o755)
    path = tmp_path / "d.toml"
    path.write_text(f"""
[[vrrp_script]]
name = "weak"
command = ["{script}"]

[[vrrp_script]]
name = "system"
command = ["/bin/true"]

[[vrrp_script]]
name = "unprivileged"
command = ["{script}"]
user = "nobody"

[[vrrp_instance]]
name = "VI_1"
interface = "lo"
vrid = 1
virtual_ips = ["127.0.0.2/8"]
track_scripts = ["weak", "system", "unprivileged"]
""")
    assert main(["check-config", "-c", str(path)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "vrrp_script" in line]
    assert warnings == [f'{path}:4: warning: vrrp_script "weak".command: {script} runs as root but {shared} can be '
                        "changed by a user other than root (set user to run it unprivileged, or make the file and "
                        "its directories root's and not group or world writable)"]
