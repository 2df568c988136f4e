"""The log renderer: syslog priority under journald, logfmt text, one line per event, JSON on
request, and standard `logging` records in the same shape."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from director import logs
from director.config.load import ConfigError, load_config

EVENT = {"event": "reload rejected", "level": "error", "timestamp": "2026-01-01T00:00:00Z", "problem": "bad key"}


@pytest.mark.parametrize(("level", "priority"), [("debug", 7), ("info", 6), ("warning", 4), ("error", 3),
                                                 ("critical", 2)])
def test_priority_prefix_under_journald(level: str, priority: int) -> None:
    line = logs.render({**EVENT, "level": level}, journal=True)
    assert line == f'<{priority}>reload rejected problem="bad key"'


def test_no_priority_but_a_timestamp_elsewhere() -> None:
    line = logs.render(EVENT, journal=False)
    assert line == '2026-01-01T00:00:00Z error reload rejected problem="bad key"'
    assert not line.startswith("<")


@pytest.mark.parametrize(("value", "rendered"), [
    ("eth0", "eth0"), ("", '""'), ("a b", '"a b"'), ('say "hi"', r'"say \"hi\""'), ("k=v", '"k=v"'),
    ("back\\slash", r'"back\\slash"'), (42, "42"), (None, "null"), (True, "true"), ("tab\there", r'"tab\there"'),
])
def test_logfmt_quoting(value: object, rendered: str) -> None:
    assert logs.logfmt_value(value) == rendered


def test_a_multi_line_message_and_exception_stay_on_one_line() -> None:
    line = logs.render({"event": 'first\nsecond "quoted"', "level": "error",
                        "exception": 'Traceback (most recent call last):\n  File "x.py"\nValueError: no'}, journal=True)
    assert "\n" not in line
    assert line == ('<3>first\\nsecond "quoted" exception="Traceback (most recent call last):\\n'
                    '  File \\"x.py\\"\\nValueError: no"')


def test_json_is_one_object_per_line_with_the_priority_under_journald() -> None:
    line = logs.render({**EVENT, "problem": "a\nb"}, fmt="json", journal=True)
    assert line.startswith("<3>{") and "\n" not in line
    assert json.loads(line[3:]) == {**EVENT, "problem": "a\nb"}
    assert json.loads(logs.render(EVENT, fmt="json"))["level"] == "error"


def test_journal_stream_counts_only_while_stderr_is_that_stream(tmp_path: Path) -> None:
    with open(tmp_path / "out", "w") as out:
        st = os.fstat(out.fileno())
        assert logs.under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, out.fileno())
        assert not logs.under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, out.fileno())
        assert not logs.under_journal({"JOURNAL_STREAM": "garbage"}, out.fileno())
        assert not logs.under_journal({}, out.fileno())


SCRIPT = """
import logging, structlog
from director import logs
logs.configure("info", "{fmt}")
logging.getLogger("asyncio").warning("loop %s\\nslow", "busy")
structlog.get_logger().error("probe failed", server="10.0.0.1:80")
structlog.get_logger().debug("not shown")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("healthcheck").exception("crashed")
"""


def run_logging(tmp_path: Path, fmt: str, journal: bool) -> list[str]:
    """A real process configured by `logs.configure`, stderr to a file (its JOURNAL_STREAM when `journal`)."""
    out = tmp_path / f"stderr-{fmt}"
    with open(out, "w") as stderr:
        st = os.fstat(stderr.fileno())
        env = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
        if journal:
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        proc = subprocess.run([sys.executable, "-c", SCRIPT.format(fmt=fmt)], stderr=stderr, env=env, timeout=60)
    assert proc.returncode == 0, out.read_text()
    return out.read_text().splitlines()


def test_stdlib_and_structlog_records_share_the_format_under_journald(tmp_path: Path) -> None:
    lines = run_logging(tmp_path, "text", journal=True)
    assert len(lines) == 3, lines
    assert lines[0] == "<4>loop busy\\nslow logger=asyncio"
    assert lines[1] == "<3>probe failed server=10.0.0.1:80"
    assert lines[2].startswith('<3>crashed logger=healthcheck exception="Traceback (most recent call last):\\n')
    assert lines[2].endswith('ZeroDivisionError: division by zero"')


def test_without_journald_lines_start_with_the_time(tmp_path: Path) -> None:
    lines = run_logging(tmp_path, "text", journal=False)
    assert len(lines) == 3, lines
    for line, level in zip(lines, ("warning", "error", "error"), strict=True):
        stamp, word, _ = line.split(" ", 2)
        assert stamp.startswith("20") and stamp.endswith("Z") and word == level


def test_json_format_for_both_loggers(tmp_path: Path) -> None:
    lines = run_logging(tmp_path, "json", journal=True)
    assert [line[:3] for line in lines] == ["<4>", "<3>", "<3>"]
    records = [json.loads(line[3:]) for line in lines]
    assert records[0]["logger"] == "asyncio" and records[0]["event"] == "loop busy\nslow"
    assert records[1]["server"] == "10.0.0.1:80"
    assert "ZeroDivisionError" in records[2]["exception"]


def test_log_format_is_read_from_global_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[global]\nlog_format = "json"\n')
    assert load_config(str(path)).global_.log_format == "json"
    path.write_text('[global]\nlog_format = "xml"\n')
    with pytest.raises(ConfigError, match="log_format"):
        load_config(str(path))


def test_run_log_level_choices_come_from_the_model() -> None:
    proc = subprocess.run([sys.executable, "-m", "director.cli", "run", "-c", "/nonexistent", "--log-level", "loud"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "'debug', 'info', 'warning', 'error'" in proc.stderr


COPIES = """
import logging, structlog
from director import logs
logs.configure("info", "text", journal=True, copies=logs.copy_handlers({file!r}, "local0", {sock!r}))
structlog.get_logger().error("probe failed", server="10.0.0.1:80")
logging.getLogger("asyncio").warning("loop slow")
import os
os.rename({file!r}, {file!r} + ".1")  # logrotate moves the file away
structlog.get_logger().info("after rotation")
"""


def test_log_file_and_syslog_copies_get_every_line_and_follow_a_rotation(tmp_path: Path) -> None:
    log_file, sock_path = tmp_path / "directord.log", tmp_path / "dev-log"
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(sock_path))
    syslog.settimeout(5)
    try:
        proc = subprocess.run([sys.executable, "-c", COPIES.format(file=str(log_file), sock=str(sock_path))],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        datagrams = [syslog.recv(4096).decode() for _ in range(3)]
    finally:
        syslog.close()
    rotated = (tmp_path / "directord.log.1").read_text().splitlines()
    assert [line.split(" ", 2)[1:] for line in rotated] == [["error", "probe failed server=10.0.0.1:80"],
                                                             ["warning", "loop slow logger=asyncio"]]
    assert log_file.read_text().split(" ", 2)[1:] == ["info", "after rotation\n"]  # a new file after the move
    # stderr keeps its journal form; syslog gets local0 (16) with the level: <16*8+3>, <16*8+4>, <16*8+6>
    assert proc.stderr.splitlines()[0] == "<3>probe failed server=10.0.0.1:80"
    assert [d[:5] for d in datagrams] == ["<131>", "<132>", "<134>"]
    assert all("directord: " in d for d in datagrams) and "probe failed" in datagrams[0]


def test_a_log_file_that_cannot_be_opened_stops_run_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text(f'[global]\nlog_file = "{tmp_path}/missing-dir/d.log"\nstate_dir = "{tmp_path}/state"\n'
                    f'control_socket = "{tmp_path}/control.sock"\n'
                    '[[vrrp_instance]]\nname = "v"\ninterface = "lo"\nvrid = 1\nvirtual_ips = ["192.0.2.1/24"]\n')
    proc = subprocess.run([sys.executable, "-m", "director.cli", "run", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "cannot open the log" in proc.stderr and "missing-dir/d.log" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("text", "key"), [('log_file = "relative.log"', "log_file"),
                                           ('log_facility = "local9"', "log_facility")])
def test_log_copies_are_checked(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(f"[global]\n{text}\n")
    with pytest.raises(ConfigError, match=key):
        load_config(str(path))
