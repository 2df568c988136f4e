"""The commands table covers the CLI, its examples parse, its exit codes are the ones the
commands really return, and `--help` (the real console script) ends with both."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from director import cli
from director.reference.commands import COMMANDS, epilog
from director.reference.walk import commands, subparsers

CONSOLE = Path(sys.executable).with_name("directord")
NAMES = [cmd.name for cmd in commands(cli.build_parser())]


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """One line per command without examples or exit codes, option without help, or stale entry."""
    found = []
    cmds = commands(parser)
    for cmd in cmds:
        doc = COMMANDS.get(cmd.name)
        if doc is None:
            found.append(f"{cmd.name}: not in director/reference/commands.py")
            continue
        if not any(ex.argv.startswith(f"directord {cmd.name}") for ex in doc.examples):
            found.append(f"{cmd.name}: no example")
        if [code for code, _ in doc.exit_codes][:1] != [0] or not all(m for _, m in doc.exit_codes):
            found.append(f"{cmd.name}: exit codes must start at 0 and each say what it means")
        found += [f"{cmd.name} {'/'.join(o.strings) or o.dest}: no help text"
                  for o in (*cmd.options, *cmd.positionals) if not o.help.strip()]
    found += [f"{name}: documented but not a command" for name in sorted(set(COMMANDS) - {c.name for c in cmds})]
    return found


def test_every_command_and_option_is_documented() -> None:
    assert undocumented(cli.build_parser()) == []


def test_an_undocumented_command_or_option_is_named() -> None:
    parser = cli.build_parser()
    subparsers(parser).add_parser("frobnicate", help="new")
    subparsers(parser).choices["probe"].add_argument("--fast", action="store_true")
    assert undocumented(parser) == ["probe --fast: no help text", "frobnicate: not in director/reference/commands.py"]


@pytest.mark.parametrize("argv", [ex.argv for doc in COMMANDS.values() for ex in doc.examples
                                  if ex.argv.startswith("directord ")])
def test_every_example_parses(argv: str) -> None:
    args = cli.build_parser().parse_args(shlex.split(argv)[1:])
    if args.command == "drill":  # names argparse does not check
        from director.drill.core import SCENARIOS

        assert set(args.scenario or []) <= set(SCENARIOS)


def _codes(name: str) -> list[int]:
    return [code for code, _ in COMMANDS[name].exit_codes]


@pytest.fixture
def invalid(tmp_path: Path) -> str:
    path = tmp_path / "bad.toml"
    path.write_text("[global]\nrouter_id = 5\n")
    return str(path)


CASES = [  # (argv, the code it returns); "{bad}" is an invalid config, "{tmp}" an empty directory
    (["check-config", "-c", "{bad}"], 1),
    (["check-config", "--frobnicate"], 2),
    (["run", "-c", "{bad}"], 1),
    (["probe", "-c", "{bad}"], 2),
    (["diff", "-c", "{bad}"], 1),
    (["apply", "-c", "{bad}"], 1),
    (["status", "--socket", "{tmp}/none.sock"], 2),
    (["reload", "--socket", "{tmp}/none.sock"], 2),
    (["drain", "not-an-address", "--socket", "{tmp}/none.sock"], 1),
    (["drain", "10.0.0.11", "--socket", "{tmp}/none.sock"], 2),
    (["undrain", "10.0.0.11:80:80", "--socket", "{tmp}/none.sock"], 1),
    (["failover", "VI_1", "--socket", "{tmp}/none.sock"], 2),
    (["import", "--from", "keepalived", "{tmp}/missing.conf"], 1),
    (["import", "--from", "nginx", "x.conf"], 2),
    (["drill", "--lab", "no-such-lab-here"], 2),
    (["drill", "--scenario", "no-such-scenario"], 2),
]


@pytest.mark.parametrize(("argv", "code"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_documented_exit_codes_are_the_real_ones(argv: list[str], code: int, invalid: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(bad=invalid, tmp=tmp_path) for a in argv]
    try:
        got = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        got = exc.code
    assert got == code, capsys.readouterr().err
    assert code in _codes(argv[0])


def test_every_command_with_a_failure_case_is_covered() -> None:
    assert {argv[0] for argv, _ in CASES} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_help_ends_with_examples_and_exit_codes(name: str) -> None:
    proc = subprocess.run([str(CONSOLE), name, "--help"], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(epilog(name))
    tail = proc.stdout[proc.stdout.index("\nExamples:\n"):]
    assert "\nExit codes:\n" in tail
    assert all(f"\n  {ex.argv}\n" in tail for ex in COMMANDS[name].examples)
    assert all(f"\n  {code}  " in tail for code in _codes(name))
