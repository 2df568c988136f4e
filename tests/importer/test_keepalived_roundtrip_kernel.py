"""keepalived round trip against a real IPVS kernel: keepalived (checker process only)
loads a config and programs the table; then directord applies the imported config to an
empty table. The two tables, as `ipvsadm -Sn` prints them, must be identical."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from director.cli import main
from tests.importer.helpers import SAMPLES
from tests.kernel_util import apply_json, ipvsadm, rules

SAMPLE = SAMPLES / "roundtrip-keepalived.conf"
EXPECTED_RULES = 15  # 6 services + 9 real servers in the sample
START_TIMEOUT = 120.0  # keepalived under the VM's emulated CPU


def table() -> tuple[set[str], str]:
    """`ipvsadm -Sn` rules plus the thresholds listing, which -S does not print."""
    return rules(), ipvsadm("-L", "-n", "--thresholds")


def keepalived_table(tmp_path: Path) -> tuple[set[str], str]:
    """Start keepalived's checker on SAMPLE, wait until its table is complete, stop it."""
    log = (tmp_path / "keepalived.log").open("w")
    proc = subprocess.Popen(
        ["keepalived", "-n", "-l", "-C", "-D", "-f", str(SAMPLE),
         "-p", str(tmp_path / "keepalived.pid"), "-c", str(tmp_path / "checkers.pid")],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        seen: set[str] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            seen = rules()
            if len(seen) >= EXPECTED_RULES:
                time.sleep(1.0)  # let it settle: no late weight changes
                return table()
            time.sleep(0.5)
        raise AssertionError(f"keepalived did not program the table (rc {proc.poll()}): {sorted(seen)}\n"
                             + (tmp_path / "keepalived.log").read_text()[-3000:])
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_imported_config_programs_the_same_table_as_keepalived(tmp_path: Path) -> None:
    ipvsadm("-C")
    try:
        theirs = keepalived_table(tmp_path)
        ipvsadm("-C")
        imported = tmp_path / "directord.toml"
        assert main(["import", "--from", "keepalived", str(SAMPLE), "-o", str(imported)]) == 0
        result = apply_json(imported, tmp_path / "state")
        assert result["returncode"] == 0, result
        ours = table()
        for who, (saved, listing) in (("keepalived", theirs), ("directord", ours)):
            print(f"{who}:\n" + "\n".join(sorted(saved)) + "\n" + listing)
        assert ours == theirs
    finally:
        ipvsadm("-C")
