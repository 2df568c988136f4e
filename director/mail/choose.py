"""Which events mail: keepalived's precedence for `smtp_alert`.

The switch on the object itself wins; unset, the global switch for its kind
(`smtp_alert_vrrp` for instances and sync groups, `smtp_alert_checker` for virtual and real
servers), then the global `smtp_alert`, then `SMTP_ALERT_FALLBACK` (real-server changes on,
the rest off). Nothing mails while no recipient or no server is configured.
"""

from __future__ import annotations

from director.config.model import (
    SMTP_ALERT_FALLBACK,
    GlobalConfig,
    RealServerConfig,
    VirtualServerConfig,
    VrrpInstanceConfig,
    VrrpSyncGroupConfig,
)


def mail_configured(g: GlobalConfig) -> bool:
    return bool(g.notification_email) and g.smtp_server is not None


def _first(*switches: bool | None) -> bool:
    return next(switch for switch in switches if switch is not None)


def alerts_instance(g: GlobalConfig, vi: VrrpInstanceConfig) -> bool:
    """State changes of one VRRP instance."""
    return mail_configured(g) and _first(vi.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert, SMTP_ALERT_FALLBACK["vrrp"])


def alerts_sync_group(g: GlobalConfig, group: VrrpSyncGroupConfig | None) -> bool:
    """One mail per change of a sync group's state (vrrp.notify.group_state); `group` is its
    [[vrrp_sync_group]] table, None when it has none."""
    own = group.smtp_alert if group is not None else None
    return mail_configured(g) and _first(own, g.smtp_alert_vrrp, g.smtp_alert, SMTP_ALERT_FALLBACK["vrrp"])


def alerts_quorum(g: GlobalConfig, vs: VirtualServerConfig) -> bool:
    """Quorum lost or regained by one virtual server."""
    return mail_configured(g) and _first(vs.smtp_alert, g.smtp_alert_checker, g.smtp_alert,
                                         SMTP_ALERT_FALLBACK["virtual_server"])


def alerts_real_server(g: GlobalConfig, rs: RealServerConfig) -> bool:
    """Up/down changes of one real server. Like keepalived, the virtual server's own switch
    (which is about quorum) does not apply here."""
    return mail_configured(g) and _first(rs.smtp_alert, g.smtp_alert_checker, g.smtp_alert,
                                         SMTP_ALERT_FALLBACK["real_server"])
