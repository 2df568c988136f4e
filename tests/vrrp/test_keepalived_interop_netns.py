"""directord and Debian's keepalived (VRRP only, `keepalived -P`) in one virtual router."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest

from scripts.labkit import VrrpLab as Lab
from scripts.labkit import keepalived_conf, sh

CASES = [
    pytest.param(3, False, id="v3-multicast"),
    pytest.param(3, True, id="v3-unicast"),
    pytest.param(2, False, id="v2-multicast"),
    pytest.param(2, True, id="v2-unicast"),
]


@pytest.mark.parametrize(("version", "unicast"), CASES)
def test_interop_both_roles_and_priority_zero(lab2: Lab, version: int, unicast: bool) -> None:
    """directord master over a keepalived backup; keepalived master over a directord
    backup; keepalived's priority-0 shutdown taken over within Skew_Time."""
    dd, ka = lab2.nodes
    interval_s = 0.1 if version == 3 else 1.0
    mdi = 3 * interval_s + interval_s  # generous upper bound on Master_Down_Interval
    dd_kw: dict[str, object] = {
        "version": version,
        "advert_interval": "100ms" if version == 3 else "1s",
    }
    if unicast:
        dd_kw["unicast_peers"] = [lab2.addr(2)]
    ka_conf = keepalived_conf(
        lab2.addr(2), priority=100, version=version,
        interval="0.1" if version == 3 else "1", peers=[lab2.addr(1)] if unicast else [],
    )

    # 1. directord (200) is master; keepalived (100) is its backup.
    lab2.start_keepalived(ka, ka_conf)
    lab2.start(dd, priority=200, **dd_kw)
    lab2.wait_for(lambda: lab2.holders() == [dd], 3 * mdi + 6)
    time.sleep(4 * interval_s)
    assert lab2.holders() == [dd], lab2.all_logs()

    # 2. directord dies: keepalived takes over as master.
    lab2.signal(dd, signal.SIGKILL)
    sh(["ip", "addr", "del", "192.0.2.100/24", "dev", "eth0"], ns=dd)  # the crash leftover
    lab2.wait_for(lambda: lab2.holders() == [ka], mdi + 1.0)

    # 3. directord comes back lower (50): it stays backup under keepalived.
    lab2.start(dd, priority=50, **dd_kw)
    lab2.wait_for(lambda: "new=backup" in lab2.log(dd), 5.0)
    time.sleep(mdi + 2 * interval_s)
    assert lab2.holders() == [ka], lab2.all_logs()

    # 4. keepalived shuts down (priority 0): directord takes over after Skew_Time.
    # keepalived's own shutdown latency varies, so time it from our receipt of the
    # priority-0 advert (both stamps come from directord's log).
    lab2.procs[ka].send_signal(signal.SIGTERM)
    lab2.wait_for(lambda: lab2.has_vip(dd), mdi + 2.0)
    lab2.procs[ka].wait(timeout=10)
    lab2.wait_for(lambda: lab2.holders() == [dd], 2.0)
    log = lab2.log(dd)
    resigned = _stamp(log, "peer resigned")
    became = _stamp(log, "new=master")
    skew = (256 - 50) / 256 * interval_s
    assert 0 <= became - resigned < skew + 0.05, f"took {became - resigned:.3f}s"


def _stamp(log: str, needle: str) -> float:
    line = next(x for x in reversed(log.splitlines()) if needle in x)
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()


def test_interop_v3_ipv6(lab2: Lab) -> None:
    """VRRPv3 over IPv6 (ff02::12, link-local sources, IPv6 pseudo-header checksum)
    against keepalived, both directions: it follows us, takes over when we die,
    and we follow it when we come back with a lower priority."""
    lab2.add_ipv6()
    dd, ka = lab2.nodes
    vip6 = "fd00::100"
    lab2.start_keepalived(ka, keepalived_conf(
        lab2.addr(2), priority=100, version=3, interval="0.1", peers=[], vip=f"{vip6}/64"))
    lab2.start(dd, priority=200, virtual_ips=[f"{vip6}/64"])
    lab2.wait_for(lambda: lab2.holders(vip6) == [dd], 10.0)
    time.sleep(0.5)
    assert lab2.holders(vip6) == [dd], lab2.all_logs()
    assert "higher priority 200" in lab2.log(ka) or "Entering BACKUP" in lab2.log(ka)
    lab2.signal(dd, signal.SIGKILL)
    lab2.wait_for(lambda: lab2.has_vip(ka, vip6), 2.0)
    sh(["ip", "addr", "del", f"{vip6}/64", "dev", "eth0"], ns=dd)  # the crash leftover
    # We come back lower and must follow keepalived's IPv6 adverts.
    lab2.start(dd, priority=50, virtual_ips=[f"{vip6}/64"])
    lab2.wait_backup(dd)
    time.sleep(1.0)
    assert lab2.holders(vip6) == [ka], lab2.all_logs()
