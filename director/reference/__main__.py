"""`python3 -m director.reference build OUTDIR`: the manual pages and shell completions.

Run from the source tree (the .deb build and scripts/install do): directord.toml(5) is made from
docs/configuration.md, which is not part of the installed package. Needs nothing beyond the
standard library and the director package. Errors are one line and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from director.reference.manpage import directord_8, directord_toml_5

REPO = Path(__file__).resolve().parents[2]
CONFIG_DOC = REPO / "docs" / "configuration.md"


def _date() -> str:
    """SOURCE_DATE_EPOCH (reproducible builds) when set, else today, as the pages' date."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return time.strftime("%Y-%m-%d", time.gmtime(int(epoch) if epoch.isdigit() else None))


def pages(config_doc: Path = CONFIG_DOC, date: str = "") -> dict[str, str]:
    """Relative path -> content of every generated file; FileNotFoundError for a missing doc."""
    from director.cli import build_parser
    from director.reference.completion import bash, zsh
    from director.reference.walk import commands, top_options

    markdown = config_doc.read_text(encoding="utf-8")
    parser = build_parser()
    cmds, top = commands(parser), top_options(parser)
    return {"directord.8": directord_8(cmds, top, date), "directord.toml.5": directord_toml_5(markdown, date),
            "completions/directord": bash(cmds, top), "completions/_directord": zsh(cmds, top)}


def build(outdir: Path, config_doc: Path = CONFIG_DOC) -> list[Path]:
    if not config_doc.is_file():
        raise FileNotFoundError(f"{config_doc}: not found; build from the source tree (directord.toml(5) is made "
                                "from docs/configuration.md)")
    written = []
    for relative, text in pages(config_doc, _date()).items():
        path = outdir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m director.reference",
                                     description="write directord(8), directord.toml(5) and shell completions")
    sub = parser.add_subparsers(dest="action", required=True)
    build_cmd = sub.add_parser("build", help="write every page and completion under OUTDIR")
    build_cmd.add_argument("outdir", metavar="OUTDIR", type=Path)
    build_cmd.add_argument("--config-doc", type=Path, default=CONFIG_DOC, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        for path in build(args.outdir, args.config_doc):
            print(path)
    except OSError as exc:
        message = str(exc) if isinstance(exc, FileNotFoundError) and not exc.filename else \
            f"{exc.filename}: {exc.strerror}"
        print(f"director.reference: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
