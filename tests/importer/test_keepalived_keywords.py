"""The importer's list of keepalived's directives, held against the real keepalived: on every
keepalived.conf of the corpus, each directive the import calls unknown to keepalived (and so
ignored by it, with nothing lost) is one that `keepalived -t` reports as an unknown keyword."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from director.importer import SourceError
from director.importer.keepalived import convert
from director.importer.keepalived_keywords import KEEPALIVED_DIRECTIVES

CORPUS = Path(os.environ.get("DIRECTORD_CORPUS", "/work/shared/corpus"))
UNKNOWN = re.compile(r"Unknown keyword '([^']*)'")
REMARK = "not a keepalived directive"


def corpus_files() -> list[Path]:
    files = sorted((CORPUS / "keepalived").glob("*.conf"))
    assert files, f"no corpus at {CORPUS} (set DIRECTORD_CORPUS)"
    return files


def name(keyword: str) -> str:
    """`mcast_src_ip=192.0.2.1` and `mcast_src_ip=192.0.2.2` are one misspelling."""
    return keyword.partition("=")[0]


def keepalived_unknown(path: Path) -> set[str]:
    """What `keepalived -t` (a config test: nothing starts) reports as unknown keywords."""
    assert shutil.which("keepalived"), "keepalived is not installed (scripts/setup installs it)"
    run = subprocess.run(["keepalived", "-t", "-l", "-D", "-n", "-f", str(path)], capture_output=True, text=True,
                         timeout=30, cwd=path.parent)
    return {name(k) for k in UNKNOWN.findall(run.stdout + run.stderr)}


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_what_the_import_calls_unknown_keepalived_does_not_know(path: Path) -> None:
    try:
        remarks, imports = convert(str(path)).remarks, True
    except SourceError:
        remarks, imports = [], False  # FNAT: directord cannot read it at all
    ours = {name(item.directive) for item in remarks if item.reason.startswith(REMARK)}
    theirs = keepalived_unknown(path)
    # keepalived reads a no-break space as part of a word, so where a file has them its
    # blocks can end elsewhere than they look, and it reports words it never reached as such
    lost_its_way = any(not k.isascii() for k in theirs)
    assert ours <= theirs or lost_its_way, ours - theirs
    # and what keepalived ignores is remarked, unless the name is a directive in another block
    # (flagged, to be safe)
    missed = {k for k in theirs - ours if k not in KEEPALIVED_DIRECTIVES and k.isascii() and k != "}"}
    assert not (missed and imports), missed
