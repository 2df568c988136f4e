"""directord(8) names every command and option in its section, directord.toml(5) every config key
under its table; both render without a groff warning; the build needs only the standard library
and fails with one line without docs/configuration.md; the completions work in real shells."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from director import cli
from director.config.model import Config
from director.reference.walk import commands
from tests.reference.conftest import REPO, render
from tests.test_docs import SAME_KEYS_AS, model_keys

HEADING = re.compile(r"^(?:\S.*|   \S.*)$")  # .SH at column 0, .SS at column 3


def sections(text: str) -> dict[str, str]:
    found, name = {}, ""
    for row in text.splitlines():
        if HEADING.match(row) and not row.startswith("DIRECTORD"):
            name = row.strip()
        found[name] = found.get(name, "") + row + "\n"
    return found


def test_directord_8_names_every_command_and_option_in_its_section(built: Path) -> None:
    parts = sections(render(built / "directord.8"))
    for cmd in commands(cli.build_parser()):
        section = parts[cmd.name]
        assert f"directord {cmd.name}" in section
        for option in cmd.options:
            assert all(s in section for s in option.strings), (cmd.name, option.strings)
    for title in ("EXIT STATUS", "SIGNALS", "FILES", "ENVIRONMENT", "SEE ALSO"):
        assert title in parts
    assert "/run/directord/control.sock" in parts["FILES"] and "/var/lib/directord/state.json" in parts["FILES"]


def test_directord_toml_5_names_every_config_key_under_its_table(built: Path) -> None:
    parts = sections(render(built / "directord.toml.5"))
    for key in model_keys(Config):
        table = SAME_KEYS_AS.get(key.table, key.table)
        titles = list(parts)
        start = next(i for i, title in enumerate(titles) if f"[{table}]" in title)
        end = next((i for i in range(start + 1, len(titles)) if "[" in titles[i]), len(titles))
        section = "".join(parts[title] for title in titles[start:end])  # per-type headings stay in the table
        assert re.search(rf"^ {{7}}{re.escape(key.key)}(\s|$)", section, re.M), key.path


def test_build_needs_only_the_standard_library(tmp_path: Path) -> None:
    proc = subprocess.run(["/usr/bin/python3", "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "import runpy; sys.argv = ['x', 'build', sys.argv[2]]; "
                           "runpy.run_module('director.reference', run_name='__main__')", str(REPO), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "completions" / "_directord").is_file()


def test_build_without_the_config_doc_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "director.reference", "build", str(tmp_path / "out"),
                           "--config-doc", str(tmp_path / "none.md")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1 and "none.md" in proc.stderr


def _bash(built: Path, words: str, cwd: Path) -> list[str]:
    script = (f"source {built}/completions/directord; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); "
              '_directord; printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=cwd,
                          timeout=30).stdout.split()


def test_bash_completes_commands_options_choices_and_files(built: Path, tmp_path: Path) -> None:
    (tmp_path / "keepalived.conf").write_text("")
    assert _bash(built, 'directord ""', tmp_path)[:3] == ["check-config", "run", "probe"]
    assert _bash(built, "directord di", tmp_path) == ["diff"]
    assert _bash(built, "directord import --from ''", tmp_path) == ["keepalived", "ldirectord", "piranha"]
    assert _bash(built, "directord import --from keepalived kee", tmp_path) == ["keepalived.conf"]
    assert "--no-host-checks" in _bash(built, "directord check-config --", tmp_path)


def test_zsh_completion_parses(built: Path) -> None:
    assert shutil.which("zsh"), "zsh is missing: run scripts/setup"
    proc = subprocess.run(["zsh", "-n", str(built / "completions" / "_directord")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
