"""Every importer on mutated samples: TOML the loader reads, or error lines and exit 1;
never an exception (which would reach the user as a traceback)."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director.cli import main
from director.config.load import load_config
from tests.importer.helpers import SAMPLES

JUNK = ["", "{", "}", '"', "#", "=", "0", "-1", "999999999999", "a b c", "->", ",", "\\", "\t", "\x00", "é"]


def mutate(lines: list[str], data: st.DataObject) -> list[str]:
    for _ in range(data.draw(st.integers(1, 5))):
        if not lines:
            break
        at = data.draw(st.integers(0, len(lines) - 1))
        how = data.draw(st.sampled_from(["drop", "copy", "cut", "junk", "word"]))
        if how == "drop":
            del lines[at]
        elif how == "copy":
            lines.insert(data.draw(st.integers(0, len(lines))), lines[at])
        elif how == "cut":
            lines[at] = lines[at][:data.draw(st.integers(0, len(lines[at])))]
        elif how == "junk":
            lines[at] += " " + data.draw(st.sampled_from(JUNK))
        else:
            words = lines[at].split()
            if words:
                words[data.draw(st.integers(0, len(words) - 1))] = data.draw(st.sampled_from(JUNK))
            lines[at] = " ".join(words)
    return lines


@pytest.mark.parametrize(("source", "sample"), [("keepalived", "keepalived.conf"), ("ldirectord", "ldirectord.cf"),
                                                ("piranha", "lvs.cf")])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_mutated_source_converts_or_gives_error_lines(tmp_path_factory: pytest.TempPathFactory, source: str,
                                                         sample: str, data: st.DataObject) -> None:
    """Through the whole command: convert, write the TOML, read it back with the loader."""
    lines = mutate((SAMPLES / sample).read_text().splitlines(), data)
    work = tmp_path_factory.mktemp("fuzz")
    path, out = work / sample, work / "out.toml"
    path.write_text("\n".join(lines) + "\n")
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = main(["import", "--from", source, str(path), "-o", str(out)])
    assert code in (0, 1)
    if code == 0:
        load_config(str(out))  # what the command wrote passes the loader
    else:
        assert errors.getvalue().strip(), "a refused import says why"
