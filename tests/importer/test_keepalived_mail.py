"""keepalived's email alert directives import exactly: recipients, sender, server and port,
timeout, HELO name and every smtp_alert switch (global_defs, vrrp_instance, vrrp_sync_group,
virtual_server, real_server); none is flagged, and the switches decide as keepalived's do."""

from __future__ import annotations

import pytest

from director.config.model import SmtpServer
from director.importer import SourceError
from director.importer.keepalived import convert
from director.mail.choose import alerts_instance, alerts_quorum, alerts_real_server, alerts_sync_group
from tests.importer.helpers import imported, notes, remarks
from tests.importer.test_keepalived import write

CONF = """
global_defs {
    notification_email {
        ops@example.org
        "Night pager <pager@example.org>" noc@example.org
    }
    notification_email_from lb1@example.org
    smtp_server %(server)s
    smtp_connect_timeout 12
    smtp_helo_name lb1.example.org
    smtp_alert_checker off
    %(global)s
}
vrrp_sync_group VG {
    group {
        VI_A
        VI_B
    }
    smtp_alert
}
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
    }
    smtp_alert
}
vrrp_instance VI_B {
    interface eth1
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.1/24
    }
    smtp_alert off
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    smtp_alert yes
    real_server 10.0.0.11 80 {
        smtp_alert on
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.0.12 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""


def load(tmp_path, server: str = "192.0.2.25 2525", global_: str = ""):  # type: ignore[no-untyped-def]
    conv = convert(write(tmp_path, CONF % {"server": server, "global": global_}))
    config, data = imported(conv, "keepalived")
    return conv, config, data


def test_every_mail_directive_maps_and_none_is_flagged(tmp_path) -> None:
    conv, config, data = load(tmp_path)
    g = config.global_
    assert g.notification_email == ("ops@example.org", "Night pager <pager@example.org>", "noc@example.org")
    assert g.notification_email_from == "lb1@example.org"
    assert g.smtp_server == SmtpServer("192.0.2.25", 2525)
    assert (g.smtp_connect_timeout, g.smtp_helo_name) == (12.0, "lb1.example.org")
    assert (g.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert_checker) == (None, None, False)
    [group] = config.vrrp_sync_groups
    assert (group.name, group.smtp_alert) == ("VG", True)
    assert data["vrrp_sync_group"] == [{"name": "VG", "smtp_alert": True}]  # the switch alone makes the table
    a, b = config.vrrp_instances
    assert (a.smtp_alert, b.smtp_alert) == (True, False)
    vs = config.virtual_servers[0]
    assert vs.smtp_alert is True and [rs.smtp_alert for rs in vs.real_servers] == [True, None]
    flagged = {note.split(":")[0] for note in notes(conv).values()}
    assert not {d for d in flagged if d.startswith(("smtp", "notification"))}, flagged
    assert data["virtual_server"][0]["smtp_alert"] is True


def test_the_switches_decide_as_keepalived_does(tmp_path) -> None:
    """keepalived: own switch, else smtp_alert_vrrp / smtp_alert_checker, else smtp_alert, else
    off for instances, groups and virtual servers but on for real servers."""
    _, config, _ = load(tmp_path)
    g, (a, b), vs = config.global_, config.vrrp_instances, config.virtual_servers[0]
    assert alerts_instance(g, a) and not alerts_instance(g, b) and alerts_sync_group(g, config.vrrp_sync_groups[0])
    assert alerts_quorum(g, vs)  # its own yes beats smtp_alert_checker off
    assert alerts_real_server(g, vs.real_servers[0]) and not alerts_real_server(g, vs.real_servers[1])

    _, config, _ = load(tmp_path, global_="smtp_alert_vrrp off\n    smtp_alert on")
    g = config.global_
    assert g.smtp_alert is True and g.smtp_alert_vrrp is False
    assert alerts_sync_group(g, config.vrrp_sync_groups[0])  # the group's own switch
    assert not alerts_sync_group(g, None)  # a group with no table: smtp_alert_vrrp off beats smtp_alert on


@pytest.mark.parametrize(("server", "expected"), [
    ("mail.example.org", SmtpServer("mail.example.org", 25)),
    ("2001:db8::25", SmtpServer("2001:db8::25", 25)),
    ("2001:db8::25 587", SmtpServer("2001:db8::25", 587)),
])
def test_smtp_server_with_and_without_a_port(tmp_path, server: str, expected: SmtpServer) -> None:
    _, config, _ = load(tmp_path, server)
    assert config.global_.smtp_server == expected


def test_a_bad_switch_fails_the_import_with_its_line(tmp_path) -> None:
    path = write(tmp_path, "global_defs {\n    smtp_alert maybe\n}\n")
    with pytest.raises(SourceError) as info:
        imported(convert(path), "keepalived")
    assert info.value.lines == [f"{path}:2: smtp_alert: 'maybe' is not one of on, true, yes, off, false, no"]


def test_what_directord_cannot_mail_is_flagged_and_left_out(tmp_path) -> None:
    """Real configs carry placeholders (`smtp_server **`) and bare local mailboxes: the first is
    left out with a remark, as keepalived rejects it too, the second kept (a local MTA delivers
    "root"); a recipient list in one string is flagged."""
    path = write(tmp_path, "global_defs {\n  notification_email {\n    acassen\n    \"a@example.org, x@evil.example\"\n"
                           "  }\n  notification_email_from root\n  smtp_server **\n}\n")
    conv = convert(path)
    config, _ = imported(conv, "keepalived")
    g = config.global_
    assert (g.notification_email, g.notification_email_from, g.smtp_server) == (("acassen",), "root", None)
    found = notes(conv)
    assert found[("keepalived.conf", 4)].endswith("must be one address")
    assert remarks(conv)[("keepalived.conf", 7)].startswith("smtp_server: not imported, so no mail is sent, as "
                                                           "keepalived rejects it too")
    assert len(found) == 1
