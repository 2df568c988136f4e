"""The email-alert keys: what they load as, their defaults (the model's), and the errors a
person can act on; nothing that reaches a header or an SMTP command may hold a line break."""

from __future__ import annotations

import pytest

from director.config.advice import config_warnings
from director.config.load import ConfigError, parse_config
from director.config.model import SMTP_ALERT_FALLBACK, GlobalConfig, SmtpServer, field_default
from director.config.problems import render

INSTANCE = {"name": "VI_1", "interface": "eth0", "vrid": 1, "virtual_ips": ["192.0.2.1"], "sync_group": "lb"}
SERVICE = {"name": "web", "address": "192.0.2.1", "port": 80, "real_server": [{"address": "10.0.0.1"}]}


def load(global_: dict, **tables: object):  # type: ignore[no-untyped-def]
    return parse_config({"global": global_, **tables}, "f")


def errors(global_: dict, **tables: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(global_, **tables)
    return [line.removeprefix("f: ") for line in info.value.lines]


def test_every_key_loads() -> None:
    config = load({"notification_email": ["ops@example.org", "Pager <pager@example.org>", "root"],
                   "notification_email_from": "LB one <lb1@example.org>", "smtp_server": "mail.example.org:587",
                   "smtp_connect_timeout": "10s", "smtp_helo_name": "lb1.example.org", "smtp_alert": True,
                   "smtp_alert_vrrp": False, "smtp_alert_checker": True},
                  vrrp_instance=[INSTANCE | {"smtp_alert": True}],
                  vrrp_sync_group=[{"name": "lb", "smtp_alert": True}],
                  virtual_server=[SERVICE | {"smtp_alert": False,
                                             "real_server": [{"address": "10.0.0.1", "smtp_alert": True}]}])
    g = config.global_
    assert g.notification_email == ("ops@example.org", "Pager <pager@example.org>", "root")
    assert g.notification_email_from == "LB one <lb1@example.org>"
    assert g.smtp_server == SmtpServer("mail.example.org", 587)
    assert (g.smtp_connect_timeout, g.smtp_helo_name) == (10.0, "lb1.example.org")
    assert (g.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert_checker) == (True, False, True)
    assert config.vrrp_sync_groups[0].smtp_alert is True
    assert config.vrrp_instances[0].smtp_alert is True
    assert config.virtual_servers[0].smtp_alert is False and config.virtual_servers[0].real_servers[0].smtp_alert


def test_the_defaults_are_keepalived_s() -> None:
    g = GlobalConfig()
    assert g.smtp_connect_timeout == 30.0 == field_default(GlobalConfig, "smtp_connect_timeout")
    assert (g.notification_email, g.smtp_server, g.smtp_alert) == ((), None, None)
    assert SmtpServer("h").port == 25
    assert SMTP_ALERT_FALLBACK == {"vrrp": False, "virtual_server": False, "real_server": True}


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.25", SmtpServer("192.0.2.25", 25)), ("mail.example.org", SmtpServer("mail.example.org", 25)),
    ("2001:db8::25", SmtpServer("2001:db8::25", 25)), ("[2001:db8::25]:2525", SmtpServer("2001:db8::25", 2525)),
    ("localhost:25", SmtpServer("localhost", 25)),
])
def test_smtp_server_forms(text: str, expected: SmtpServer) -> None:
    assert load({"smtp_server": text, "notification_email": ["a@b.c"]}).global_.smtp_server == expected


@pytest.mark.parametrize(("global_", "line"), [
    ({"smtp_server": "mail:0"}, 'global.smtp_server: "mail:0" is not "HOST", "HOST:PORT", "IPV6" or "[IPV6]:PORT" '
                                "(port 1..65535)"),
    ({"smtp_server": "bad host"}, 'global.smtp_server: "bad host" is not "HOST", "HOST:PORT", "IPV6" or '
                                  '"[IPV6]:PORT" (port 1..65535)'),
    ({"notification_email": ["a@example.org\r\nBcc: x@evil.example"]},
     "global.notification_email[0]: 'a@example.org\\r\\nBcc: x@evil.example' must not contain control characters "
     "(a line break would add mail headers)"),
    ({"notification_email": ["a@example.org, b@example.org"]},
     "global.notification_email[0]: 'a@example.org, b@example.org' must be one address"),
    ({"notification_email_from": "@example.org"}, "global.notification_email_from: '@example.org' must be an address "
                                                  'such as "ops@example.com", "Ops <ops@example.com>" or "root"'),
    ({"smtp_helo_name": "lb 1"}, "global.smtp_helo_name: 'lb 1' must be one word of printable characters "
                                 "(a host name or [address])"),
    ({"smtp_connect_timeout": "0s"}, "global.smtp_connect_timeout: must be between 100ms and 600s, got 0s"),
    ({"smtp_alert": "yes"}, "global.smtp_alert: must be true or false, got a string"),
    ({"smtp_alert_sync_groups": {"lb": True}}, "global.smtp_alert_sync_groups: moved: set smtp_alert in "
                                               "the group's [[vrrp_sync_group]] table"),  # now a group's own
])
def test_errors_name_the_key_and_the_reason(global_: dict, line: str) -> None:
    assert line in errors(global_, vrrp_instance=[INSTANCE]), errors(global_, vrrp_instance=[INSTANCE])


def test_smtp_alert_on_an_instance_a_group_a_service_and_a_real_server_is_a_boolean() -> None:
    found = errors({}, vrrp_instance=[INSTANCE | {"smtp_alert": 1}], vrrp_sync_group=[{"name": "lb", "smtp_alert": 1}],
                   virtual_server=[SERVICE | {"smtp_alert": "on", "real_server": [{"address": "10.0.0.1",
                                                                                    "smtp_alert": []}]}])
    assert {'vrrp_instance "VI_1".smtp_alert: must be true or false, got an integer',
            'vrrp_sync_group "lb".smtp_alert: must be true or false, got an integer',
            'virtual_server "web".smtp_alert: must be true or false, got a string',
            'virtual_server "web".real_server[0].smtp_alert: must be true or false, got a list'} <= set(found)


@pytest.mark.parametrize(("global_", "warning"), [
    ({"notification_email": ["a@b.c"]}, "global.notification_email: no mail is sent without smtp_server"),
    ({"smtp_server": "mail"}, "global.smtp_server: no mail is sent: notification_email names no recipient"),
])
def test_half_a_mail_setup_is_a_warning(global_: dict, warning: str) -> None:
    config = load(global_)
    assert render(config_warnings(config), "f", {}) == [f"f: {warning}"]
