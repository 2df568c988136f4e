"""The README's quick start on a real Debian 12 system: `apt install ./directord_*.deb` in a
fresh root, which is then booted with systemd as init (qemu, the host's Debian kernel). A
oneshot unit in the guest runs guest_checks.sh: enable --now, status, reload (good and bad),
the journal, systemd-analyze security, stop, remove, purge. Each test here asserts its part
of the script's results, read back from the guest's disk.

This host's PID 1 is not systemd, so systemd-nspawn -b cannot be used; a VM can."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.packaging import debian_root


@dataclass(frozen=True)
class Guest:
    results: dict[str, str]  # check name -> "" when ok, else why it failed
    artifacts: Path
    serial: Path

    def assert_ok(self, *names: str) -> None:
        missing = [name for name in names if name not in self.results]
        failed = {name: self.results[name] for name in names if self.results.get(name)}
        assert not missing and not failed, (f"not run: {missing}; failed: {failed}\nserial log tail:\n"
                                            + debian_root.serial_tail(self.serial))

    def artifact(self, name: str) -> str:
        return (self.artifacts / name).read_text(errors="replace")


def parse_results(text: str) -> dict[str, str]:
    results: dict[str, str] = {}
    for line in text.splitlines():
        verdict, _, rest = line.partition(" ")
        if verdict == "ok":
            results[rest] = ""
        elif verdict == "fail":
            name, _, why = rest.partition(": ")
            results[name] = why or "failed"
        elif verdict == "done":
            results["done"] = ""
    return results


@pytest.fixture(scope="module")
def guest(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    work = tmp_path_factory.mktemp("systemd-guest")
    root, image, serial, out = work / "root", work / "root.img", work / "serial.log", work / "out"
    kernel = debian_root.host_kernel()
    try:
        debian_root.debootstrap(root, debian_root.BOOT_PACKAGES)
        debian_root.install_package(root, deb)
        debian_root.copy_modules(root, kernel)
        debian_root.prepare(root)
        debian_root.make_image(root, image)
        shutil.rmtree(root)
        debian_root.boot(image, kernel, serial, timeout=900)
        debian_root.extract(image, "/root/results.txt", out)
        debian_root.extract(image, "/root/artifacts", out)
    except debian_root.GuestError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        image.unlink(missing_ok=True)
    yield Guest(parse_results((out / "results.txt").read_text()), out / "artifacts", serial)


def test_the_checks_ran_to_the_end(guest: Guest) -> None:
    guest.assert_ok("done")


def test_installed_files_and_the_unit_left_disabled(guest: Guest) -> None:
    guest.assert_ok("version", "files", "conffile", "config-mode", "man-link", "not-enabled")


def test_commands_before_going_live(guest: Guest) -> None:
    guest.assert_ok("check-config-example", "import", "probe")


def test_a_start_with_a_bad_config_fails_with_the_reason_and_gives_up(guest: Guest) -> None:
    guest.assert_ok("bad-start-refused", "bad-start-gives-up", "bad-start-tries", "bad-start-journal")
    assert "Active: failed" in guest.artifact("systemctl-status-failed.txt")


def test_enable_now_brings_up_the_vip_and_the_table(guest: Guest) -> None:
    guest.assert_ok("enable-now", "vip", "ipvs", "sysctl-written", "status", "systemctl-status",
                    "no-errors-at-start")
    assert "VI_1" in guest.artifact("directord-status.txt")


def test_reload_applies_a_good_edit_and_refuses_a_bad_one_in_the_journal(guest: Guest) -> None:
    guest.assert_ok("reload", "reload-applied", "bad-reload-refused", "kept-running", "journal-err-has-reason",
                    "journal-err-reload-client", "journal-err-only-errors")


def test_the_sandbox_exposure_is_at_most_2_8(guest: Guest) -> None:
    guest.assert_ok("exposure")


def test_stop_remove_and_purge_leave_nothing(guest: Guest) -> None:
    guest.assert_ok("stop", "remove", "purge")
