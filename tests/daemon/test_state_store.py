"""The state file: every malformed shape is moved aside (the daemon starts empty rather
than crash-looping), writes never follow a planted symlink, and state_dir must be root's
own directory, held by one process at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from director.daemon.state_store import (
    MAX_STATE_BYTES,
    AdminDrain,
    State,
    StateError,
    StateStore,
)
from director.ipvs.model import DestKey, ServiceKey

SERVICE = [4, "tcp", "192.0.2.10", 80, 0]
GOOD = {"version": 1, "owned": [{"service": SERVICE, "drain_timeout": 30}],
        "draining": [{"service": SERVICE, "dest": [4, "10.0.0.1", 80], "since": 5.0}],
        "admin_drains": [{"address": "10.0.0.2", "port": None, "service": "web"}]}


def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


def test_a_good_file_round_trips(tmp_path: Path) -> None:
    store = StateStore(str(state_dir(tmp_path)))
    (store.path).write_text(json.dumps(GOOD))
    state = store.load()
    assert state.book.owned == {ServiceKey(4, "tcp", "192.0.2.10", 80, 0): 30.0}
    assert state.book.draining == {(ServiceKey(4, "tcp", "192.0.2.10", 80, 0), DestKey(4, "10.0.0.1", 80)): 5.0}
    assert state.admin_drains == [AdminDrain("10.0.0.2", None, "web")]
    store.save(state)
    assert store.load() == state
    assert sorted(p.name for p in store.dir.iterdir()) == ["state.json"]  # no temp file left


@pytest.mark.parametrize("content", [
    b"[]", b"null", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b"{not json",
    json.dumps({"owned": [{"service": "x", "drain_timeout": 1}]}).encode(),
    json.dumps({"owned": [{"service": SERVICE, "drain_timeout": "soon"}]}).encode(),
    json.dumps({"owned": [{"service": [4, "tcp", "192.0.2.10", "80", 0], "drain_timeout": 1}]}).encode(),
    json.dumps({"draining": [{"service": SERVICE, "dest": [4, 5, 80], "since": 1}]}).encode(),
    json.dumps({"admin_drains": [{"address": 5}]}).encode(),
    json.dumps({"admin_drains": {"address": "10.0.0.1"}}).encode(),
    json.dumps({"owned": [7]}).encode(),
    b" " * (MAX_STATE_BYTES + 1),
    # integers past the largest float: math.isfinite raised OverflowError (found by tests/fuzz/test_state.py)
    json.dumps({"owned": [{"service": SERVICE, "drain_timeout": 10**400}]}).encode(),
    json.dumps({"draining": [{"service": SERVICE, "dest": None, "since": -(10**309)}]}).encode(),
    json.dumps({"clock": {"boot_id": "b", "offset": 2**1024}}).encode(),
], ids=["list", "null", "not-utf8", "deep", "syntax", "service-str", "timeout-str", "port-str", "dest-addr-int",
        "drain-address-int", "drains-object", "owned-int", "too-big", "timeout-huge-int", "since-huge-int",
        "offset-huge-int"])
def test_a_malformed_file_is_moved_aside_and_the_state_starts_empty(tmp_path: Path, content: bytes) -> None:
    store = StateStore(str(state_dir(tmp_path)))
    store.path.write_bytes(content)
    assert store.load() == State()
    names = [p.name for p in store.dir.iterdir()]
    assert len(names) == 1 and names[0].startswith("state.json.corrupt-"), names
    assert (store.dir / names[0]).read_bytes() == content  # kept for a post-mortem


def test_a_write_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """The old fixed `state.tmp`, opened without O_EXCL, overwrote the symlink's target."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    store = StateStore(str(state_dir(tmp_path)))
    (store.dir / "state.tmp").symlink_to(victim)
    store.save(State())
    assert victim.read_text() == "precious"
    assert json.loads(store.path.read_text())["version"] == 1


def test_a_state_file_that_is_a_symlink_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(GOOD))
    store = StateStore(str(state_dir(tmp_path)))
    store.path.symlink_to(elsewhere)
    with pytest.raises(StateError, match="cannot read"):
        store.load()


@pytest.mark.parametrize("unsafe", ["group-writable", "world-writable", "other-owner", "symlink"])
def test_an_unsafe_state_dir_is_refused(tmp_path: Path, unsafe: str) -> None:
    path = state_dir(tmp_path)
    if unsafe == "group-writable":
        path.chmod(0o770)
    elif unsafe == "world-writable":
        path.chmod(0o707)
    elif unsafe == "other-owner":
        os.chown(path, 65534, 65534)
    else:
        link = tmp_path / "link"
        link.symlink_to(path)
        path = link
    store = StateStore(str(path))
    for action in (store.load, lambda: store.save(State()), store.lock):
        with pytest.raises(StateError, match=str(path)):
            action()


def test_a_missing_state_dir_is_made_0700(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "new" / "state"))
    store.save(State())
    assert (store.dir.stat().st_mode & 0o777) == 0o700


def test_one_process_holds_the_state_dir(tmp_path: Path) -> None:
    path = state_dir(tmp_path)
    first, second = StateStore(str(path)), StateStore(str(path))
    first.lock()
    with pytest.raises(StateError, match="in use by another directord"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def test_apply_lets_go_of_the_state_dir_when_it_returns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`apply` run twice in one process (as the kernel tests do), whatever the first ended with."""
    from director.cli import main

    config = tmp_path / "directord.toml"
    config.write_text('[[virtual_server]]\nname = "web"\naddress = "192.0.2.10"\nport = 80\n'
                      '[[virtual_server.real_server]]\naddress = "10.0.0.11"\n')
    state = state_dir(tmp_path)
    for _ in range(2):
        main(["apply", "--state-dir", str(state), "-c", str(config)])
        assert "in use" not in capsys.readouterr().err
    probe = StateStore(str(tmp_path / "state"))
    probe.lock()
    probe.unlock()
