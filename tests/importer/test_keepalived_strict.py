"""keepalived's vrrp_strict, vrrp_iptables and vrrp_ipsets: what carries over, settled as
`keepalived -t` (2.2.7) reports it, and what stays flagged with its reason."""

from __future__ import annotations

from director.importer.keepalived import convert
from tests.importer.helpers import imported, notes
from tests.importer.test_keepalived import remarks, write

CONF = """
global_defs {
   vrrp_strict
   vrrp_iptables LB-CHAIN
   vrrp_ipsets
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    preempt_delay 10
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.200.16
    }
%(more)s
}
"""


def load(tmp_path, more: str = ""):  # type: ignore[no-untyped-def]
    return convert(write(tmp_path, CONF % {"more": more}))


def test_vrrp_strict_imports_its_rules_and_keepalived_s_resets_but_flags_no_accept(tmp_path) -> None:
    conv = load(tmp_path, "    use_vmac\n    vmac_xmit_base")
    config, data = imported(conv, "keepalived")
    assert config.global_.vrrp_strict and data["global"]["vrrp_strict"] is True
    [vi] = config.vrrp_instances
    # keepalived: "Strict mode does not support authentication. Ignoring.", preempt_delay and
    # xmit_base "incompatible with strict mode - resetting"
    assert (vi.auth_type, vi.preempt_delay, vi.use_vmac, vi.vmac_xmit_base) == (None, 0.0, True, False)
    said = remarks(conv)
    assert said[("keepalived.conf", 13)] == "authentication: not imported: keepalived ignores authentication " \
                                            "under vrrp_strict"
    assert "vmac_xmit_base cleared, as keepalived resets it under vrrp_strict" in said[("keepalived.conf", 20)]
    flagged = notes(conv)
    assert flagged[("keepalived.conf", 3)].startswith("vrrp_strict: imported as vrrp_strict = true (the protocol "
                                                      "rules), but keepalived's vrrp_strict also sets no_accept")
    # with a VMAC the firewall chain kept IGMP/MLD off it: that is lost, and said
    assert "keep IGMP/MLD reports off the VMACs of VI_1" in flagged[("keepalived.conf", 4)]


def test_without_a_vmac_the_firewall_chains_have_no_effect(tmp_path) -> None:
    conv = load(tmp_path)
    said, flagged = remarks(conv), notes(conv)
    assert said[("keepalived.conf", 4)].startswith("vrrp_iptables: no effect: directord writes no firewall rules")
    assert said[("keepalived.conf", 5)].startswith("vrrp_ipsets: no effect")
    assert set(flagged) == {("keepalived.conf", 3)}  # only vrrp_strict's no_accept


def test_vrrp_strict_with_unicast_peers_is_left_out_and_says_why(tmp_path) -> None:
    conv = load(tmp_path, "    unicast_peer {\n        192.0.2.2\n    }")
    config, data = imported(conv, "keepalived")
    assert not config.global_.vrrp_strict and "vrrp_strict" not in data.get("global", {})
    assert notes(conv)[("keepalived.conf", 3)].startswith("vrrp_strict: not imported: VI_1 with unicast peers, "
                                                          "which vrrp_strict forbids")


def test_use_vmac_addr_stays_flagged_with_its_reason(tmp_path) -> None:
    conv = convert(write(tmp_path, CONF.replace("   vrrp_strict\n", "") % {"more": "    use_vmac\n    use_vmac_addr"}))
    assert notes(conv)[("keepalived.conf", 20)].startswith("use_vmac_addr: not imported: directord builds one VMAC "
                                                           "per instance")
