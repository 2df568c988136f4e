"""Tracked scripts and files moving mastership between real daemons (`directord run` pairs, and
directord beside Debian's keepalived running the same scripts), in network namespaces.

Each director's script checks for a file of its own that the test creates and removes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from scripts.labkit import DIRECTORD, keepalived_conf
from scripts.labkit import VrrpLab as Lab

TEST = "/usr/bin/test"


def script(name: str, flag: Path, weight: int, **more: object) -> dict[str, object]:
    return {"name": name, "command": [TEST, "-e", str(flag)], "interval": "100ms", "weight": weight, **more}


def status(lab: Lab, node: str) -> dict[str, Any]:
    proc = subprocess.run([DIRECTORD, "status", "--json", "--socket", f"{lab.tmp}/{node}.sock"],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def instance(lab: Lab, node: str) -> dict[str, Any]:
    return status(lab, node)["vrrp"]["instances"].get("VI_1", {})


def flags(lab: Lab, *names: str) -> list[Path]:
    paths = [lab.tmp / f"{name}.flag" for name in names]
    for path in paths:
        path.touch()
    return paths


def test_a_failing_script_of_negative_weight_hands_mastership_over_and_back(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    f1, f2 = flags(lab2, "n1", "n2")
    for node, prio, flag in ((n1, 150, f1), (n2, 120, f2)):
        lab2.start_directord(node, priority=prio, tables={"vrrp_script": [script("chk", flag, -60)]},
                             track_scripts=["chk"])
    lab2.wait_master(n1, 10)
    f1.unlink()  # 150 - 60 = 90 < 120
    lab2.wait_master(n2, 5)
    lab2.wait_for(lambda: instance(lab2, n1).get("effective_priority") == 90, 3)
    f1.touch()  # back to 150: n1 preempts
    lab2.wait_master(n1, 5)
    assert instance(lab2, n1)["effective_priority"] == 150
    tracker = status(lab2, n1)["trackers"][0]
    assert (tracker["name"], tracker["state"]) == ("chk", "ok")
    assert tracker["instances"] == [{"instance": "VI_1", "weight": -60, "shift": 0, "fault": False}]


def test_a_passing_script_of_positive_weight_wins_mastership(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    f1, f2 = flags(lab2, "n1", "n2")
    f1.unlink()
    for node, prio, flag in ((n1, 100, f1), (n2, 110, f2)):
        lab2.start_directord(node, priority=prio, tables={"vrrp_script": [script("up", flag, 30)]},
                             track_scripts=["up"])
    lab2.wait_master(n2, 10)  # 100 against 140
    f1.touch()
    f2.unlink()  # 130 against 110
    lab2.wait_master(n1, 5)
    lab2.wait_for(lambda: instance(lab2, n1).get("effective_priority") == 130, 3)


def test_a_weight_0_script_holds_the_instance_in_fault(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    f1, f2 = flags(lab2, "n1", "n2")
    f1.unlink()  # failing from the start
    for node, prio, flag in ((n1, 150, f1), (n2, 120, f2)):
        lab2.start_directord(node, priority=prio, tables={"vrrp_script": [script("gate", flag, 0)]},
                             track_scripts=["gate"])
    lab2.wait_master(n2, 10)
    lab2.wait_for(lambda: instance(lab2, n1).get("state") == "fault", 3)
    # it waited in init for the script's first result: never backup before fault
    log = lab2.log(n1)
    assert "new=backup" not in log and "old=init new=fault" in log
    f1.touch()
    lab2.wait_master(n1, 5)  # out of fault, then preempts with 150
    f1.unlink()
    lab2.wait_master(n2, 5)
    assert instance(lab2, n1)["state"] == "fault" and not lab2.has_vip(n1)
    gate = status(lab2, n1)["trackers"][0]
    assert gate["instances"] == [{"instance": "VI_1", "weight": 0, "shift": 0, "fault": True}]


def test_a_track_file_value_times_weight_moves_the_priority(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    prio = lab2.tmp / "n1.prio"
    prio.write_text("0\n")
    lab2.start_directord(n1, priority=100, tables={"track_file": [
        {"name": "prio", "path": str(prio), "weight": 10, "interval": "100ms"}]}, track_files=["prio"])
    lab2.start_directord(n2, priority=110)
    lab2.wait_master(n2, 10)
    prio.write_text("2\n")  # 100 + 20 = 120
    lab2.wait_master(n1, 5)
    assert instance(lab2, n1)["effective_priority"] == 120
    prio.write_text("-3\n")  # 70
    lab2.wait_master(n2, 5)
    assert instance(lab2, n1)["effective_priority"] == 70
    prio.write_text("-26")  # -260: fault
    lab2.wait_for(lambda: instance(lab2, n1).get("state") == "fault", 3)
    tracked = status(lab2, n1)["trackers"][0]
    assert (tracked["kind"], tracked["value"], tracked["instances"][0]["fault"]) == ("file", -26, True)


# --- beside keepalived --------------------------------------------------------------------------------------


def keepalived_with_scripts(lab: Lab, up: Path, down: Path) -> str:
    """keepalived.conf for node 2: priority 110, script "up" (weight +30) and "down" (weight -50)."""
    conf = keepalived_conf(lab.addr(2), priority=110, version=3, interval="0.1", peers=[])
    conf = conf.replace("global_defs {", "global_defs {\n  script_user root")
    scripts = "".join(f'vrrp_script {name} {{\n  script "{TEST} -e {flag}"\n  interval 1\n  weight {weight}\n}}\n'
                      for name, flag, weight in (("up", up, 30), ("down", down, -50)))
    conf = conf.replace("vrrp_instance VI_1 {", scripts + "vrrp_instance VI_1 {")
    head, _, _ = conf.rstrip().rpartition("}")
    return head + "  track_script {\n    up\n    down\n  }\n}\n"


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="needs Debian's keepalived")
def test_keepalived_and_directord_weigh_the_same_scripts_the_same_way(lab2: Lab) -> None:
    """Both run a +30 and a -50 script on their own flags; mastership follows the sums on both sides."""
    dd, ka = lab2.nodes
    dd_up, dd_down, ka_up, ka_down = flags(lab2, "dd-up", "dd-down", "ka-up", "ka-down")
    lab2.start_keepalived(ka, keepalived_with_scripts(lab2, ka_up, ka_down))
    lab2.start_directord(dd, priority=100, tables={"vrrp_script": [
        script("up", dd_up, 30, interval="1s"), script("down", dd_down, -50, interval="1s")]},
        track_scripts=["up", "down"])
    steps = [  # (flags to remove, flags to restore, directord's sum, keepalived's sum, master)
        ((), (), 130, 140, ka),
        ((ka_up,), (), 130, 110, dd),  # keepalived loses its +30
        ((), (ka_up,), 130, 140, ka),  # and wins it back (it preempts)
        ((dd_down,), (), 80, 140, ka),
        ((ka_down,), (), 80, 90, ka),  # both lowered: keepalived still higher
        ((ka_up,), (), 80, 60, dd),
        ((), (dd_down, ka_up, ka_down), 130, 140, ka),
    ]
    ka_was = 140
    for remove, restore, dd_sum, ka_sum, master in steps:
        for path in remove:
            path.unlink()
        for path in restore:
            path.touch()
        lab2.wait_master(master, 8)
        lab2.wait_for(lambda dd_sum=dd_sum: instance(lab2, dd).get("effective_priority") == dd_sum, 4)
        if ka_sum != ka_was:  # keepalived's own change has landed before the next step (a loaded host)
            lab2.wait_for(lambda ka_sum=ka_sum: _last_priority(lab2.log(ka)) == ka_sum, 8)
            ka_was = ka_sum
        time.sleep(0.3)
        assert lab2.holders() == [master], lab2.all_logs()
    # keepalived changed its effective priority through the same values
    log = lab2.log(ka)
    for before, after in ((140, 110), (110, 140), (140, 90), (90, 60)):
        assert f"Changing effective priority from {before} to {after}" in log, log[-3000:]


def _last_priority(log: str) -> int | None:
    """The effective priority keepalived last logged a change to."""
    changes = [line for line in log.splitlines() if "Changing effective priority from" in line]
    return int(changes[-1].rsplit(" ", 1)[1]) if changes else None


def test_a_tracked_process_count_moves_mastership(lab2: Lab) -> None:
    """Processes are the host's, not a namespace's: each test process carries an argument of its own."""
    n1, n2 = lab2.nodes
    argv = ["/bin/sleep", "3141.59"]
    procs = [subprocess.Popen(argv)]
    try:
        lab2.start_directord(n1, priority=150, tables={"track_process": [
            {"name": "worker", "process": argv[0], "args": argv[1:], "weight": -60, "interval": "100ms"}]},
            track_processes=["worker"])
        lab2.start_directord(n2, priority=120)
        lab2.wait_master(n1, 10)
        procs.pop().kill()  # 150 - 60 = 90
        lab2.wait_master(n2, 5)
        tracked = status(lab2, n1)["trackers"][0]
        assert (tracked["kind"], tracked["state"], tracked["count"]) == ("process", "failed", 0)
        procs.append(subprocess.Popen(argv))
        lab2.wait_master(n1, 5)
        assert instance(lab2, n1)["effective_priority"] == 150
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_reload_adds_and_removes_a_tracked_script_without_restarting_the_instance(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    flag = lab2.tmp / "n1.flag"  # never created: the script fails
    lab2.start_directord(n1, priority=150)
    lab2.start_directord(n2, priority=120)
    lab2.wait_master(n1, 10)

    def reload(**kw: object) -> None:
        lab2.write_config(n1, daemon=True, priority=150, **kw)
        proc = subprocess.run([DIRECTORD, "reload", "--socket", f"{lab2.tmp}/{n1}.sock"], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    reload(tables={"vrrp_script": [script("chk", flag, -60)]}, track_scripts=["chk"])
    lab2.wait_master(n2, 5)
    assert instance(lab2, n1)["effective_priority"] == 90
    assert "old=init" not in lab2.log(n1).split("reloaded")[-1]  # updated in place, not restarted
    reload()  # the script goes: its weight stops counting
    lab2.wait_master(n1, 5)
    assert instance(lab2, n1)["effective_priority"] == 150 and status(lab2, n1)["trackers"] == []


def test_keepalived_and_directord_weigh_reversed_scripts_and_files_and_init_them_alike(lab2: Lab) -> None:
    """The same reversed script (+30 reverse: -30 while it passes) and reversed track file
    (weight 5 reverse, init_file 4: -20 from the value keepalived and directord each write into
    their missing file) on both, each on its own flag and file: the effective priorities they
    reach are the same at every step."""
    dd, ka = lab2.nodes
    dd_flag, ka_flag = flags(lab2, "dd-rev", "ka-rev")
    dd_file, ka_file = lab2.tmp / "dd.weight", lab2.tmp / "ka.weight"
    conf = keepalived_conf(lab2.addr(2), priority=110, version=3, interval="0.1", peers=[])
    conf = conf.replace("global_defs {", "global_defs {\n  script_user root")
    conf = conf.replace("vrrp_instance VI_1 {",
                        f'vrrp_script rev {{\n  script "{TEST} -e {ka_flag}"\n  interval 1\n  weight 30 reverse\n}}\n'
                        f'track_file tf {{\n  file "{ka_file}"\n  weight 5 reverse\n  init_file 4\n}}\n'
                        "vrrp_instance VI_1 {")
    head, _, _ = conf.rstrip().rpartition("}")
    lab2.start_keepalived(ka, head + "  track_script {\n    rev\n  }\n  track_file {\n    tf\n  }\n}\n")
    lab2.start_directord(dd, priority=110, vrid=52, tables={
        "vrrp_script": [script("rev", dd_flag, 30, interval="1s", reverse=True)],
        "track_file": [{"name": "tf", "path": str(dd_file), "weight": 5, "reverse": True, "init_file": 4,
                        "interval": "100ms"}]},
        track_scripts=["rev"], track_files=["tf"])
    lab2.wait_for(lambda: (lab2.tmp / f"{dd}.sock").exists(), 10)  # the daemon answers status from here on
    steps = [((), 60), ((dd_flag, ka_flag), 90)]  # the scripts pass (-30), the files hold 4 (-20); then fail
    for remove, expected in steps:
        for path in remove:
            path.unlink()
        lab2.wait_for(lambda e=expected: _effective(lab2, dd) == e, 8)
        lab2.wait_for(lambda e=expected: _last_priority(lab2.log(ka)) == e, 8)
    assert dd_file.read_text().strip() == ka_file.read_text().strip() == "4"  # both wrote init_file's value
    for path in (dd_file, ka_file):
        path.write_text("-2\n")  # reversed: +10
    lab2.wait_for(lambda: _effective(lab2, dd) == 120, 8)
    lab2.wait_for(lambda: _last_priority(lab2.log(ka)) == 120, 8)


def _effective(lab: Lab, node: str) -> int | None:
    """The instance's effective priority; None while the daemon does not answer yet."""
    try:
        return instance(lab, node).get("effective_priority")
    except AssertionError:
        return None
