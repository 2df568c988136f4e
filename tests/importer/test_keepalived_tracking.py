"""keepalived's vrrp_script, track_file and track_script/track_file blocks, imported as keepalived
2.2.7 reads them (what it ignores is ignored here too, and flagged)."""

from __future__ import annotations

import pytest

from director.config.model import TrackFile, TrackScript, VrrpScriptConfig
from director.importer.keepalived import convert
from director.importer.keepalived_tracking import shell_feature
from tests.importer.helpers import SAMPLES, imported, notes

SAMPLE = "keepalived-tracking.conf"


@pytest.fixture(scope="module")
def result():
    conv = convert(str(SAMPLES / SAMPLE))
    config, data = imported(conv, "keepalived")
    return conv, config, data


def note(conv, line: int) -> str:
    return notes(conv).get((SAMPLE, line), "")


def test_scripts_carry_over_as_argv_with_their_settings(result) -> None:
    _, config, _ = result
    scripts = {s.name: s for s in config.vrrp_scripts}
    assert scripts["chk_haproxy"] == VrrpScriptConfig(
        "chk_haproxy", ("/usr/bin/killall", "-0", "haproxy"), interval=2.0, timeout=1.0, weight=-20, rise=2, fall=3,
        user="keepalived_script")  # script_user fills in the user of a script that names none
    api = scripts["chk_api"]
    assert api.command == ("/usr/local/bin/check-api", "--url", "http://127.0.0.1/health")  # '...' groups
    assert (api.weight, api.init_fail, api.user, api.group) == (10, True, "nobody", "nogroup")
    assert scripts["chk_pipe"].interval == 0.5
    assert scripts["chk_later"].command == ("/bin/true",)


def test_shell_syntax_is_split_as_keepalived_splits_it_and_flagged(result) -> None:
    conv, config, _ = result
    scripts = {s.name: s for s in config.vrrp_scripts}
    assert scripts["chk_pipe"].command == ("pidof", "nginx", "|", "grep", "-q", ".")
    assert scripts["chk_port"].command == ("</dev/tcp/127.0.0.1/80",)
    for line, feature in ((24, "'<'"), (28, "'|'")):
        assert note(conv, line).startswith(f"script: uses shell syntax ({feature}), but keepalived 2 runs no shell")
        assert 'command = ["/bin/sh", "-c", "..."]' in note(conv, line)
    assert not note(conv, 8) and not note(conv, 18)  # plain argv: exact


def test_track_files(result) -> None:
    conv, config, _ = result
    files = {f.name: f for f in config.track_files}
    assert (files["maintenance"].path, files["maintenance"].weight) == ("/run/keepalived/maintenance", 0)
    # keepalived runs in /; a weight beyond 254 acts as 254 (value x weight is clamped either way)
    assert (files["prio"].path, files["prio"].weight) == ("/run/prio", 254)
    assert (files["prio"].init_file, files["prio"].init_overwrite) == (0, False) and not note(conv, 40)


def test_instance_references_keep_keepalived_weights(result) -> None:
    conv, config, _ = result
    vi1 = config.vrrp_instances[0]
    assert vi1.track_scripts == (TrackScript("chk_haproxy", -20), TrackScript("chk_api", 30),
                                 TrackScript("chk_port", -253), TrackScript("chk_pipe", 0))
    assert vi1.track_files == (TrackFile("maintenance", 0), TrackFile("prio", -2))
    assert not any(f == SAMPLE and 50 <= line <= 62 for f, line in notes(conv))  # all exact


def test_what_keepalived_ignores_is_not_imported_and_says_so(result) -> None:
    conv, config, _ = result
    vi2 = config.vrrp_instances[1]
    assert vi2.track_scripts == (TrackScript("chk_pipe", 0),)
    assert note(conv, 72) == ("track_script chk_haproxy: keepalived reads 'chk_api' as an unknown option of "
                              "chk_haproxy and tracks nothing on this line: write one vrrp_script per line, as "
                              "NAME [weight N]")
    assert note(conv, 73) == ("track_script chk_missing: no vrrp_script named chk_missing is defined before this "
                              "line: keepalived ignores it")
    assert "no vrrp_script named chk_later is defined before this line" in note(conv, 74)  # defined below
    assert note(conv, 76) == "track_script chk_pipe: chk_pipe is already tracked here: keepalived ignores the second"


def test_sync_group_members_lose_weighted_scripts_and_file_weights(result) -> None:
    conv, config, _ = result
    vi3, vi4 = config.vrrp_instances[2:4]
    assert vi3.track_scripts == (TrackScript("chk_later", 0),)  # the weighted chk_haproxy is dropped
    assert note(conv, 92).startswith("track_script chk_haproxy: not imported: keepalived ignores a track_script "
                                     "with a weight (-20) in a member of sync group G_ZEROED")
    assert vi3.track_files == (TrackFile("prio", 0),)
    assert note(conv, 96).startswith("track_file prio: weight 254 becomes 0")
    # sync_group_tracking_weight keeps the weights; the group's own track_script tracks for each member
    assert vi4.track_scripts == (TrackScript("chk_api", 10), TrackScript("chk_later", 0))


def test_script_user_is_noted_only_when_other_programs_would_run_as_root(result) -> None:
    conv, _, _ = result
    assert not note(conv, 4)  # no notify or MISC_CHECK in this file


def test_the_import_validates_and_is_otherwise_exact(result) -> None:
    conv, _, data = result
    assert [s["name"] for s in data["vrrp_script"]] == ["chk_haproxy", "chk_api", "chk_port", "chk_pipe",
                                                         "chk_later"]
    flagged = {line for f, line in notes(conv) if f == SAMPLE}
    assert flagged == {24, 28, 72, 73, 74, 76, 92, 96}


@pytest.mark.parametrize(("text", "feature"), [
    ("/usr/bin/killall -0 haproxy", None),
    ("/bin/sh -c 'pidof x | wc -l'", None),  # inside single quotes: keepalived's grouping, no shell
    ("a && b", "&&"), ("a || b", "||"), ("a; b", ";"), ("a > /dev/null", ">"), ("a 2>&1", ">"),
    ("echo $HOME", "$H"), ("echo ${X}", "${"), ("echo $(id)", "$("), ("echo `id`", "`"), ("ls *.conf", "*"),
    ("cat ~/x", "~"), ("</dev/tcp/127.0.0.1/80", "<"), ("price $5", "$5"), ("a$", None),
])
def test_shell_feature(text: str, feature: str | None) -> None:
    assert shell_feature(text) == feature


def test_track_processes(result) -> None:
    from director.config.model import TrackProcess, TrackProcessConfig

    conv, config, _ = result
    processes = {p.name: p for p in config.track_processes}
    assert processes["haproxy"] == TrackProcessConfig("haproxy", "haproxy", quorum=2, quorum_max=4, weight=-30,
                                                      fork_delay=1.5, terminate_delay=1.5)  # delay: both
    nginx = processes["nginx_exact"]  # a quoted argument stays one
    assert (nginx.process, nginx.args, nginx.param_match, nginx.fork_delay) == (
        "/usr/sbin/nginx", ("-g", "daemon off;"), "partial", 2.0)
    assert (processes["no_args"].args, processes["no_args"].param_match) == ((), "exact")  # param_match alone
    assert (processes["argv0"].full_command, processes["argv0"].args) == (True, None)
    vi5 = config.vrrp_instances[4]
    assert vi5.track_processes == (TrackProcess("haproxy", -30), TrackProcess("nginx_exact", 20),
                                   TrackProcess("no_args", 0), TrackProcess("argv0", 1))
    assert not any(f == SAMPLE and line >= 127 for f, line in notes(conv))  # all exact


def _convert(tmp_path, text: str):
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    return convert(str(path))


TRACKED_INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_script {
        chk
    }
%s}
"""


def test_a_misspelt_directive_in_a_tracking_block_is_remarked_as_keepalived_ignores_it(tmp_path) -> None:
    conv = _convert(tmp_path, """vrrp_script chk {
    script "/bin/true"
    weigth 5
}
track_file tf {
    file /run/prio
    wieght 2
}
vrrp_track_process tp {
    process haproxy
    quorom 2
}
""" + TRACKED_INSTANCE % "")
    assert not conv.unmapped  # keepalived -t: "Unknown keyword", nothing is lost
    remarked = {(r.line, r.directive): r.reason for r in conv.remarks}
    assert remarked[(3, "weigth")].startswith("not a keepalived directive: keepalived ignores it "
                                              "(did you mean weight?)")
    assert (7, "wieght") in remarked and (11, "quorom") in remarked


@pytest.mark.parametrize(("hook", "script_user_noted", "hook_noted"), [
    ("notify /usr/local/bin/on-vrrp", True, False),  # keepalived runs it as script_user
    ("notify_master /usr/local/bin/on-master", True, False),
    ("notify /usr/local/bin/on-vrrp root", False, False),  # its own user, as directord runs it
    ("notify /usr/local/bin/on-vrrp nobody", False, True),  # its own user, which directord does not use
])
def test_script_user_reaches_the_notify_hooks_that_name_no_user(tmp_path, hook: str, script_user_noted: bool,
                                                                hook_noted: bool) -> None:
    conv = _convert(tmp_path, 'global_defs {\n    script_user keepalived_script\n}\n'
                    'vrrp_script chk {\n    script "/bin/true"\n}\n' + TRACKED_INSTANCE % f"    {hook}\n")
    lines = {u.line for u in conv.unmapped}
    assert (2 in lines) == script_user_noted
    assert (17 in lines) == hook_noted
    config, _ = imported(conv, "keepalived")
    assert config.vrrp_scripts[0].user == "keepalived_script"
    vi = config.vrrp_instances[0]
    assert vi.notify_master or vi.notify_arguments == "keepalived"  # main's mapping of keepalived's notify


def test_script_user_root_runs_the_hooks_as_directord_does_so_nothing_is_flagged(tmp_path) -> None:
    conv = _convert(tmp_path, 'global_defs {\n    script_user root\n}\n'
                    'vrrp_script chk {\n    script "/bin/true"\n}\n'
                    + TRACKED_INSTANCE % "    notify_master /usr/local/bin/on-master\n")
    assert not conv.unmapped
    config, _ = imported(conv, "keepalived")
    assert config.vrrp_scripts[0].user == "root"


REVERSED = """
vrrp_script chk {
    script "/bin/true"
    weight 10 reverse
}
track_file tf {
    file "/run/tf"
    weight 2 reverse
    init_file 5 overwrite
}
track_file bare {
    file "/run/bare"
    init_file
}
track_file zero {
    file "/run/zero"
    init_file overwrite
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
    }
    track_script {
        chk weight 20 noreverse
    }
    track_file {
        tf
        bare weight 3 reverse
        zero weight 1 no_reverse
    }
}
"""


def test_reverse_and_init_file_import_as_keepalived_reads_them(tmp_path) -> None:
    """keepalived 2.2.7 (`keepalived -t`): `reverse` on an object's weight; `reverse` or
    `noreverse` on an instance's line, which otherwise takes the object's; init_file's VALUE
    defaults to 0, `overwrite` writes over an existing file. `no_reverse` it reports unknown."""
    path = tmp_path / "keepalived.conf"
    path.write_text(REVERSED)
    conv = convert(str(path))
    config, data = imported(conv, "keepalived")
    [script] = config.vrrp_scripts
    assert (script.weight, script.reverse) == (10, True)
    files = {f.name: f for f in config.track_files}
    assert (files["tf"].weight, files["tf"].reverse, files["tf"].init_file, files["tf"].init_overwrite) == \
        (2, True, 5, True)
    assert (files["bare"].init_file, files["bare"].init_overwrite, files["zero"].init_file,
            files["zero"].init_overwrite) == (0, False, 0, True)
    vi = config.vrrp_instances[0]
    assert vi.track_scripts == (TrackScript("chk", 20, reverse=False),)  # noreverse beats the script's reverse
    assert vi.track_files == (TrackFile("tf", 2, reverse=True), TrackFile("bare", 3, reverse=True),
                              TrackFile("zero", 1))
    assert data["vrrp_instance"][0]["track_files"][1] == {"name": "bare", "weight": 3, "reverse": True}
    flagged = notes(conv)
    assert list(flagged.values()) == ["track_file zero: 'no_reverse' is not an option keepalived knows here "
                                      "(reverse or noreverse): the weight is imported without it"]
