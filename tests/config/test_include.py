"""include: fragments merged into one config, errors placed in the fragment they are in,
and what a fragment may not hold; check-config and auto_reload read them too."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from director.config.load import ConfigError, load_config
from director.daemon.daemon import Daemon
from director.ipvs.memory import MemoryIpvs
from tests.daemon.test_metrics import wait_until

MAIN = """include = ["conf.d/*.toml", "{extra}"]
[global]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
metrics_listen = ""
auto_reload = true

[[virtual_server]]
name = "main"
address = "192.0.2.1"
port = 80
"""


def service(name: str, address: str, weight: int | str = 1) -> str:
    return (f'[[virtual_server]]\nname = "{name}"\naddress = "{address}"\nport = 80\n'
            f'  [[virtual_server.real_server]]\n  address = "10.0.0.1"\n  weight = {weight}\n')


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "20-api.toml").write_text(service("api", "192.0.2.3"))
    (tmp_path / "conf.d" / "10-web.toml").write_text(service("web", "192.0.2.2"))
    (tmp_path / "conf.d" / ".10-web.toml.swp").write_text("not toml")  # not matched by *.toml
    (tmp_path / "extra.toml").write_text(service("extra", "192.0.2.4"))
    (tmp_path / "directord.toml").write_text(MAIN.format(dir=tmp_path, extra=tmp_path / "extra.toml"))
    return tmp_path


def test_fragments_are_appended_in_order(tree: Path) -> None:
    config = load_config(str(tree / "directord.toml"))
    assert [vs.name for vs in config.virtual_servers] == ["main", "web", "api", "extra"]
    assert config.fragments == (str(tree / "conf.d" / "10-web.toml"), str(tree / "conf.d" / "20-api.toml"),
                                str(tree / "extra.toml"))


def test_an_error_names_the_fragment_and_its_line(tree: Path) -> None:
    (tree / "conf.d" / "20-api.toml").write_text("\n\n" + service("api", "192.0.2.3", weight=70000))
    (tree / "extra.toml").write_text(service("web", "192.0.2.9"))  # a name used twice: both places said
    with pytest.raises(ConfigError) as caught:
        load_config(str(tree / "directord.toml"))
    lines = caught.value.lines
    assert f"{tree}/conf.d/20-api.toml:9: virtual_server \"api\".real_server[0].weight: must be in 0..65535" \
        in "\n".join(lines), lines
    assert any(line.startswith(f"{tree}/extra.toml:2: ") and "already used" in line
               and "conf.d/10-web.toml:1" in line for line in lines), lines


@pytest.mark.parametrize(("text", "message"), [
    ('[global]\nlog_level = "debug"\n', "20-api.toml:1: global: a fragment holds only"),
    ('include = ["other.toml"]\n', "20-api.toml:1: include: a fragment holds only"),
    ("[[virtual_server]\n", "20-api.toml: invalid TOML"),
])
def test_what_a_fragment_may_not_hold(tree: Path, text: str, message: str) -> None:
    (tree / "conf.d" / "20-api.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(tree / "directord.toml"))
    assert message in str(caught.value)


def test_include_must_be_a_list_of_patterns(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text('include = "conf.d"\n')
    with pytest.raises(ConfigError, match=r"d.toml:1: include: must be a list of file patterns"):
        load_config(str(path))


def test_check_config_reads_the_fragments(tree: Path) -> None:
    (tree / "conf.d" / "20-api.toml").write_text(service("api", "192.0.2.3", weight="'x'"))
    proc = subprocess.run([sys.executable, "-m", "director.cli", "check-config", "--no-host-checks",
                           "-c", str(tree / "directord.toml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and f"{tree}/conf.d/20-api.toml:7:" in proc.stderr, proc.stderr


def test_auto_reload_follows_a_fragment(tree: Path) -> None:
    def weights(daemon: Daemon) -> dict[str, int]:
        return {str(key): dest.spec.weight for key, svc in daemon.backend.dump().items()  # type: ignore[union-attr]
                for dest in svc.dests.values()}

    async def go() -> None:
        daemon = Daemon(load_config(str(tree / "directord.toml")), MemoryIpvs())
        running = asyncio.create_task(daemon.run())

        async def has(weight: int) -> bool:
            return weight in weights(daemon).values()
        try:
            await wait_until(lambda: has(1), 15)
            (tree / "conf.d" / "10-web.toml").write_text(service("web", "192.0.2.2", weight=42))
            await wait_until(lambda: has(42), 15)
        finally:
            daemon.stop.set()
            await asyncio.wait_for(running, 30)

    uvloop.run(go())
