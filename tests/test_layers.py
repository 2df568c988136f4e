"""The layering DESIGN.md draws, read from the import statements of every module.

Each package may import only the packages listed for it (and the standard library and
third-party code). Imports inside functions and under TYPE_CHECKING count too: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = ("director", "healthcheck", "vrrp", "nlmsg")

# package -> the project packages its modules may import (itself always allowed)
ALLOWED: dict[str, tuple[str, ...]] = {
    "nlmsg": (),
    "director.config": (),
    "director.text": (),  # wording (counts) the CLI and the daemon's summaries share
    "director.hook_env": (),  # the environment exec checks and notify hooks get
    "director.hook_tree": (),  # killing a hook with everything it started
    "healthcheck": ("director.config", "director.hook_env", "director.hook_tree"),
    "vrrp": ("director.config", "nlmsg", "director.hook_env", "director.hook_tree"),
    # `python -m vrrp` is an entry point like director.cli, not library code: it sets up the one
    # log renderer; the library modules of vrrp log through structlog and never import it.
    "vrrp.__main__": ("vrrp", "director.config", "director.logs", "nlmsg", "director.hook_env"),
    "director.ipvs": ("director.config", "nlmsg"),
    "director.sync": ("director.config", "director.ipvs"),
    "director.reconcile": ("director.config", "director.ipvs"),
    "director.importer": ("director.config",),
    "director.mail": ("director.config",),  # alert mail: sans-IO policy and wording, one SMTP adapter
    "director.drill": ("director.config", "vrrp", "nlmsg"),
    # the hook helpers: the daemon runs the tracked scripts (director.daemon.script_run)
    "director.daemon": ("director.config", "director.ipvs", "director.sync", "director.reconcile", "healthcheck",
                        "vrrp", "nlmsg", "director.text", "director.hook_env", "director.hook_tree",
                        "director.mail"),
    # the manual pages walk the CLI's parser (lazily: director.cli imports reference.commands);
    # FILES names the state file
    "director.reference": ("director.config", "director.cli", "director.daemon"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(source: str) -> set[str]:
    """Every project module `source` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in PROJECT)
    return found


def owner(module: str) -> str | None:
    """The most specific package of ALLOWED that holds `module`."""
    matches = [pkg for pkg in ALLOWED if module == pkg or module.startswith(pkg + ".")]
    return max(matches, key=len, default=None)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def modules() -> list[Path]:
    return sorted(p for top in PROJECT for p in (REPO / top).rglob("*.py"))


def violations(module: str, source: str) -> list[str]:
    package = owner(module)
    if package is None:
        return []
    allowed = (package, *ALLOWED[package])
    bad = []
    for name in sorted(project_imports(source)):
        if any(within(name, pkg) for pkg in allowed):
            continue
        # `from director import config` names the package itself: judge the full name only;
        # the version lives at the root of the distribution for everyone
        if name in PROJECT or name == "director.__version__" or any(within(pkg, name) for pkg in allowed):
            continue
        bad.append(f"{module} imports {name}")
    return bad


def test_every_module_is_under_a_layer_rule() -> None:
    loose = [module_name(p) for p in modules() if owner(module_name(p)) is None]
    assert set(loose) <= {"director", "director.cli", "director.logs"}, loose


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p))
def test_imports_follow_the_layers(path: Path) -> None:
    assert violations(module_name(path), path.read_text()) == []


def test_the_rule_catches_a_lazy_import_across_layers() -> None:
    source = "def f():\n    from director.daemon.daemon import Daemon\n"
    assert violations("vrrp.runtime", source) == ["vrrp.runtime imports director.daemon.daemon",
                                                  "vrrp.runtime imports director.daemon.daemon.Daemon"]
    assert violations("healthcheck.tcp", "import director.config.model\n") == []
    assert violations("director.config.host", "from vrrp.addresses import local_addresses\n") != []
    assert violations("vrrp.runtime", "from director import logs\n") == ["vrrp.runtime imports director.logs"]
