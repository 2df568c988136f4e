"""The VRRP lines a reload prints: added, removed and changed instances, field by field."""

from __future__ import annotations

import dataclasses

from director.config.diff import vrrp_changes
from director.config.load import parse_config


def _instances(*blocks: str) -> tuple:
    text = "".join(f'[[vrrp_instance]]\nname = "{name}"\ninterface = "eth0"\nvrid = {vrid}\npriority = 100\n'
                   f'virtual_ips = [{vips}]\n' for name, vrid, vips in blocks)
    import tomllib

    return parse_config(tomllib.loads(text)).vrrp_instances


def test_unchanged_instances_say_nothing() -> None:
    same = _instances(("VI_1", 1, '"192.0.2.1/24"'))
    assert vrrp_changes(same, same) == []


def test_added_removed_and_changed_fields() -> None:
    old = _instances(("VI_1", 1, '"192.0.2.1/24"'), ("VI_2", 2, '"192.0.2.2/24"'))
    new = _instances(("VI_1", 1, '"192.0.2.1/24", "192.0.2.9/24"'), ("VI_3", 3, '"192.0.2.3/24"'))
    new = (dataclasses.replace(new[0], priority=90, advert_interval=0.5), new[1])
    assert vrrp_changes(old, new) == [
        "remove vrrp_instance VI_2",
        "change vrrp_instance VI_1: priority 100 -> 90; advert_interval 1s -> 0.5s; virtual_ips +192.0.2.9/24",
        "add vrrp_instance VI_3 (eth0 vrid 3)",
    ]


def test_a_removed_vip_is_marked_minus() -> None:
    old = _instances(("VI_1", 1, '"192.0.2.1/24", "192.0.2.9/24"'))
    new = _instances(("VI_1", 1, '"192.0.2.1/24"'))
    assert vrrp_changes(old, new) == ["change vrrp_instance VI_1: virtual_ips -192.0.2.9/24"]
