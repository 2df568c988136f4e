"""Reference documentation generated from the sources it describes.

`directord(8)` and the shell completions come from the CLI's argparse tree plus the table in
`commands` (examples, exit codes, signals, files: what argparse cannot know);
`directord.toml(5)` comes from docs/configuration.md. Generated, they cannot drift from the
code, and tests/reference/ fails when a command, option or config key goes undocumented.
`python3 -m director.reference build OUTDIR` writes them all.

Only `commands` may be imported by director.cli (for the `--help` epilogs); the builders
import director.cli lazily, so there is no import cycle.
"""
