"""keepalived's smtp_alert precedence: own switch, then the kind's global switch, then the
global smtp_alert, then real servers on and the rest off; nothing without recipients and a server."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from director.config.model import (
    GlobalConfig,
    RealServerConfig,
    SmtpServer,
    VirtualServerConfig,
    VrrpInstanceConfig,
    VrrpSyncGroupConfig,
)
from director.mail.choose import (
    alerts_instance,
    alerts_quorum,
    alerts_real_server,
    alerts_sync_group,
    mail_configured,
)

MAIL = GlobalConfig(notification_email=("ops@example.com",), smtp_server=SmtpServer("127.0.0.1"))
VI = VrrpInstanceConfig("VI_1", "eth0", 1)
VS = VirtualServerConfig("web", ipaddress.ip_address("192.0.2.1"), 80, 0, 4)
RS = RealServerConfig(ipaddress.ip_address("10.0.0.1"), 80)


def kinds(g: GlobalConfig, own: bool | None = None) -> tuple[bool, bool, bool, bool]:
    return (alerts_instance(g, dataclasses.replace(VI, smtp_alert=own)),
            alerts_sync_group(g, VrrpSyncGroupConfig("lb", smtp_alert=own)),
            alerts_quorum(g, dataclasses.replace(VS, smtp_alert=own)),
            alerts_real_server(g, dataclasses.replace(RS, smtp_alert=own)))


def test_unset_everywhere_only_real_servers_mail() -> None:
    assert kinds(MAIL) == (False, False, False, True)


@pytest.mark.parametrize("own", [True, False])
def test_the_objects_own_switch_wins(own: bool) -> None:
    assert kinds(dataclasses.replace(MAIL, smtp_alert=not own, smtp_alert_vrrp=not own,
                                     smtp_alert_checker=not own), own) == (own,) * 4


def test_the_kinds_switch_beats_the_global_one() -> None:
    g = dataclasses.replace(MAIL, smtp_alert=True, smtp_alert_vrrp=False)
    assert kinds(g) == (False, False, True, True)
    g = dataclasses.replace(MAIL, smtp_alert=False, smtp_alert_checker=True)
    assert kinds(g) == (False, False, True, True)
    assert kinds(dataclasses.replace(MAIL, smtp_alert=False)) == (False, False, False, False)
    assert kinds(dataclasses.replace(MAIL, smtp_alert=True)) == (True, True, True, True)


def test_the_virtual_servers_switch_is_about_quorum_only() -> None:
    vs_on = dataclasses.replace(VS, smtp_alert=False)
    assert alerts_real_server(MAIL, RS) and not alerts_quorum(MAIL, vs_on)


@pytest.mark.parametrize("g", [dataclasses.replace(MAIL, notification_email=()),
                               dataclasses.replace(MAIL, smtp_server=None)])
def test_nothing_mails_without_recipients_and_a_server(g: GlobalConfig) -> None:
    assert not mail_configured(g)
    assert kinds(dataclasses.replace(g, smtp_alert=True), True) == (False,) * 4
