"""`directord import`: convert a keepalived, ldirectord or piranha config to directord TOML.

The output is validated with the same code as `check-config` before anything is
written, so an import never leaves a config directord would refuse.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from director.config.load import ConfigError, parse_config
from director.config.resolve import real_server_names, stand_ins
from director.config.toml_write import dumps
from director.importer import Conversion, SourceError

EXIT_OK, EXIT_ERROR = 0, 1
INLINE_KEYS = frozenset({"garp", "timeouts", "sync_daemon", "virtual_ips", "excluded_ips", "virtual_routes",
                         "virtual_rules"})
SECTION_ORDER = ("global", "ipvs", "vrrp_script", "track_file", "track_process", "vrrp_instance", "virtual_server")
CONVERTERS = {"keepalived": "director.importer.keepalived", "ldirectord": "director.importer.ldirectord",
              "piranha": "director.importer.piranha"}


def _converter(source: str) -> Callable[[str], Conversion]:
    """The source format's convert(); only the one asked for is imported."""
    if source not in CONVERTERS:
        raise ValueError(f"unknown source format {source!r}")
    convert: Callable[[str], Conversion] = importlib.import_module(CONVERTERS[source]).convert
    return convert


def render(conv: Conversion, source: str, path: str) -> str:
    """The TOML text with a header saying where it came from and what did not map."""
    header = [f"Imported by `directord import --from {source}` from {path}."]
    header += [f"  read: {name}" for name in conv.sources[1:]]
    if conv.unmapped:
        header.append(f"{len(conv.unmapped)} directive(s) not carried over exactly; review them:")
        header += [f"  {item}" for item in conv.unmapped]
    else:
        header.append("Every directive was carried over.")
    if conv.remarks:
        header.append("Carried over, with a remark:")
        header += [f"  {item}" for item in conv.remarks]
    header.append("Check it with `directord check-config -c FILE` on the director itself.")
    ordered = {key: conv.config[key] for key in SECTION_ORDER if key in conv.config}
    return dumps(ordered | conv.config, header, INLINE_KEYS)


def sort_unmapped(conv: Conversion) -> None:
    """Report in reading order: by file (as first read), then line."""
    order = {name: index for index, name in enumerate(conv.sources)}
    for items in (conv.unmapped, conv.remarks):
        items.sort(key=lambda item: (order.get(item.file, len(order)), item.line))


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_ERROR


def run_import(args: argparse.Namespace) -> int:
    """Convert args.file; warn (or with --strict fail) on every directive without an equivalent."""
    source, path = args.source, args.file
    if not os.path.isfile(path):
        return _fail([f"{path}: cannot read: {'not a regular file' if os.path.exists(path) else 'no such file'}"])
    try:
        conv = _converter(source)(path)
    except SourceError as exc:
        return _fail(exc.lines)
    sort_unmapped(conv)
    if conv.unmapped and args.strict:
        return _fail([*map(str, conv.unmapped),
                      f"{path}: {len(conv.unmapped)} directive(s) have no exact equivalent (--strict)"])
    for item in conv.unmapped:
        print(item, file=sys.stderr)
    text = render(conv, source, path)
    target = args.output or "<stdout>"
    try:
        import tomllib

        data = tomllib.loads(text)
        parse_config(data, target, hosts=stand_ins(real_server_names(data)))
    except (ConfigError, ValueError) as exc:
        lines = exc.lines if isinstance(exc, ConfigError) else [f"{target}: {exc}"]
        return _fail([f"the imported config does not validate (a bug in the importer or an invalid source "
                      f"value): {line}" for line in lines])
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            return _fail([f"{args.output}: cannot write: {exc.strerror}"])
    else:
        sys.stdout.write(text)
    return EXIT_OK
