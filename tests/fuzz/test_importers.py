"""The three importers (director.importer: keepalived.conf, ldirectord.cf, piranha's lvs.cf):
a Conversion or a SourceError, nothing else; and what converts is written as TOML that the
config loader takes or refuses with its ConfigError lines, as `directord import` and then
`check-config --no-host-checks` do in the corpus's measure.py.

Seeds are the real configs of the corpus, read where they are ($DIRECTORD_CORPUS, else
/work/shared/corpus: {keepalived,ldirectord,piranha}/*.conf, see its SOURCES.tsv), and the
samples of tests/importer. A missing corpus fails the tests. Every corpus file goes through
whole once; those up to SEED_BYTES are mutated on their lines that are not comments (huge
numbers, each format's words at their edges), then as text and as bytes (not UTF-8, NULs,
cut) by the shared mutations.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from director.config.advice import config_warnings
from director.config.load import ConfigError, explain, load_config
from director.importer import Conversion, SourceError, keepalived, ldirectord, piranha
from director.importer.cli import render, sort_unmapped
from tests.fuzz.mutate import NUMBER, TOKEN, Choose, budget, drawn, mutate_bytes, mutate_text, pick

CORPUS = Path(os.environ.get("DIRECTORD_CORPUS", "/work/shared/corpus"))
SAMPLES = Path(__file__).resolve().parents[1] / "importer" / "samples"
CONVERT: dict[str, Callable[[str], Conversion]] = {
    "keepalived": keepalived.convert, "ldirectord": ldirectord.convert, "piranha": piranha.convert}
# the samples that do not include other files (a mutated copy is imported from elsewhere)
OWN_SAMPLES = {"keepalived": ["roundtrip-keepalived.conf"], "ldirectord": ["ldirectord.cf"], "piranha": ["lvs.cf"]}
# A file larger than this is mutated a few of its blocks at a time (whole it imports in tens
# of milliseconds or more); every file is also imported whole, once.
SEED_BYTES = 8_000
HUGE_PORT = "9" * 5000
# what a number becomes: past int()'s 4300 digits, a digit int() does not read, not finite
NUMBERS = [HUGE_PORT, "²", "٨٠", "1e400", "nan", "-1", "0", "4294967296", "99999999999999999999", "0x", "1.5"]
# Words each format reads, at their edges: numbers past any field, addresses almost right,
# ranges (reversed, IPv6), block keywords out of place, includes (the source, alone in its
# folder, finds itself: a loop). Includes for keepalived.conf only: lvs.cf has the same lexer,
# and a loop reads up to MAX_FILES_READ files, slow enough to take a good part of the budget.
TOKENS = {
    "keepalived": ["virtual_server", "real_server", "{", "}", "10.0.0.1-250", "fwmark", "0x10", "1e400", "nan",
                   "4294967296", HUGE_PORT, "²", "٨٠", "fe80::1%eth0", "10.0.0.1/33", "group", "HTTP_GET",
                   "MISC_CHECK", "include *", "include missing*.conf"],
    "ldirectord": ["virtual=10.0.0.1:80", "real=10.0.0.1->10.0.0.3:80", "real=10.0.0.9->10.0.0.1:80",
                   "real=0.0.0.0->255.255.255.255:80", "real=10.0.0.0->10.0.3.255:80 masq",
                   "real=::1->::3", "real=10.0.0.1:" + HUGE_PORT, "virtual=10.0.0.1:" + HUGE_PORT,
                   "virtual=[::1]:" + HUGE_PORT, "fallback=10.0.0.3:" + HUGE_PORT, "real=[::1]:80", "virtual=[::1]",
                   "fwm", "gate", "checktype=negotiate", 'request="/', "checkport=" + HUGE_PORT, "virtual=1e400",
                   "virtual=²", "real=10.0.0.1:٨٠"],
    "piranha": ["virtual", "server", "{", "}", "=", "address", "1e400", "4294967296", HUGE_PORT, "²", "10.0.0.1:",
                "fwmark", "active", "0x", "nan"],
}


@pytest.fixture(scope="module", autouse=True)
def corpus() -> None:
    """The corpus must be there: without it these tests would pass on the samples alone."""
    missing = [f"{CORPUS / fmt}/*.conf" for fmt in CONVERT if not corpus_files(fmt)]
    if missing:
        pytest.fail(f"the corpus of real configs is missing: no {', '.join(missing)} (set DIRECTORD_CORPUS to "
                    "the folder with keepalived/, ldirectord/ and piranha/)", pytrace=False)


def corpus_files(fmt: str) -> list[Path]:
    folder = CORPUS / fmt
    return sorted(folder.glob("*.conf")) if folder.is_dir() else []


def read(path: Path) -> str:
    """The text as the importers read it (director.importer.common.read_source)."""
    return path.read_bytes().decode("utf-8", errors="replace")


@functools.cache
def seeds(fmt: str) -> list[str]:
    texts = [read(p) for p in corpus_files(fmt)] + [read(SAMPLES / name) for name in OWN_SAMPLES[fmt]]
    return [piece for text in texts for piece in pieces(text, fmt)]


def pieces(text: str, fmt: str) -> list[str]:
    """TEXT, or when larger than SEED_BYTES its blocks a few at a time: top-level statements
    of keepalived.conf and lvs.cf, virtual= sections of ldirectord.cf (after its global lines)."""
    if len(text) <= SEED_BYTES:
        return [text]
    head, blocks, depth, opened = "", [""], 0, False
    for line in text.splitlines(keepends=True):
        if fmt == "ldirectord" and line.startswith("virtual"):
            blocks.append("")
        blocks[-1] += line
        code = re.split(r"[#!]", line, maxsplit=1)[0]
        depth, opened = depth + code.count("{") - code.count("}"), opened or "{" in code
        if fmt != "ldirectord" and depth <= 0 and opened:  # a block and the statements before it
            blocks.append("")
            depth, opened = 0, False
    if fmt == "ldirectord":
        head = blocks.pop(0)
    chunks = [head]
    for block in blocks:
        if len(chunks[-1]) + len(block) > SEED_BYTES and chunks[-1] != head:
            chunks.append(head)
        chunks[-1] += block
    return chunks


def edit_live(text: str, choose: Choose, tokens: list[str]) -> str:
    """An edit of a line that is not a comment (real configs are half comments): a number
    made huge, a word replaced by one of the format's, or one of them on a new line before.
    The line's keyword is picked first, so a directive seen once is not drowned by the
    weight and real_server lines of a long file."""
    lines = text.splitlines(keepends=True)
    live: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        if line.strip() and line.lstrip()[0] not in "#!":
            live.setdefault(re.split(r"[\s=]", line.strip(), maxsplit=1)[0], []).append(i)
    if not live:
        return pick(choose, tokens) + "\n" + text
    at = pick(choose, live[pick(choose, sorted(live))])
    line, op = lines[at], choose(0, 2)
    found = list((NUMBER if op == 0 else TOKEN).finditer(line))
    if op < 2 and found:
        m = pick(choose, found)
        lines[at] = line[:m.start()] + pick(choose, NUMBERS if op == 0 else tokens) + line[m.end():]
    else:
        indent = line[:len(line) - len(line.lstrip())]
        lines.insert(at, indent + pick(choose, tokens) + "\n")
    return "".join(lines)


def source_file(fmt: str, choose: Choose) -> bytes:
    """A seed with a few edits of its lines, and one time in four the shared text mutations
    (which often unbalance a brace, and a lexer error stops the import before it converts)
    or byte edits."""
    text = pick(choose, seeds(fmt))
    for _ in range(choose(1, 6)):  # an importer reads on past a bad line: edits seldom hide each other
        text = edit_live(text, choose, TOKENS[fmt])
    how = choose(0, 3)
    if how == 1:
        text = mutate_text(text, choose, 3)
    data = text.encode("utf-8", "surrogatepass")
    return mutate_bytes(data, choose, (), 2) if how == 2 else data


@st.composite
def sources(draw: st.DrawFn, fmt: str) -> bytes:
    return source_file(fmt, drawn(draw))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The source alone in its folder (an `include *` finds only itself), the output elsewhere."""
    return tmp_path_factory.mktemp("source") / "source.conf", tmp_path_factory.mktemp("output") / "directord.toml"


def one_line(line: str) -> bool:
    return len(line.splitlines()) == 1


def check(fmt: str, work: tuple[Path, Path], data: bytes) -> None:
    """Import, write the TOML, check it as check-config --no-host-checks does."""
    source, output = work
    source.write_bytes(data)
    try:
        conv = CONVERT[fmt](str(source))
    except SourceError as exc:
        assert exc.lines and all(one_line(line) for line in exc.lines), exc.lines
        return
    sort_unmapped(conv)
    assert all(one_line(str(item)) for item in conv.unmapped), conv.unmapped
    text = render(conv, fmt, str(source))
    tomllib.loads(text)  # whatever the source held, the importer writes TOML
    output.write_text(text)
    try:
        config = load_config(str(output))
    except ConfigError as exc:
        path = re.escape(str(output))
        assert all(re.fullmatch(rf"{path}(:\d+)?: .+", line) and line.isprintable() for line in exc.lines), exc.lines
        return
    for line in explain(str(output), config_warnings(config), "warning: "):
        assert line.isprintable(), line


@budget(500)
@given(sources("keepalived"))
def test_mutated_keepalived_conf_imports_or_raises_source_error(work: tuple[Path, Path], data: bytes) -> None:
    check("keepalived", work, data)


@budget(500)
@given(sources("ldirectord"))
def test_mutated_ldirectord_cf_imports_or_raises_source_error(work: tuple[Path, Path], data: bytes) -> None:
    check("ldirectord", work, data)


@budget(300)
@given(sources("piranha"))
def test_mutated_lvs_cf_imports_or_raises_source_error(work: tuple[Path, Path], data: bytes) -> None:
    check("piranha", work, data)


@budget(200)
@given(st.sampled_from(sorted(CONVERT)), st.binary(max_size=400))
def test_random_bytes_import_or_raise_source_error(work: tuple[Path, Path], fmt: str, data: bytes) -> None:
    check(fmt, work, data)


@pytest.mark.parametrize("fmt", sorted(CONVERT))
def test_every_corpus_file_imports_or_raises_source_error(work: tuple[Path, Path], fmt: str) -> None:
    """Whole and unmutated, the large files too."""
    files = corpus_files(fmt)
    assert files, f"no {CORPUS / fmt}/*.conf"
    for path in files:
        check(fmt, work, path.read_bytes())
