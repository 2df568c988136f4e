"""The state machine, one test per rule, each citing RFC 5798 (or 3768) section."""

from __future__ import annotations

import ipaddress

import pytest

from vrrp.codec import Advert
from vrrp.fsm import (
    AddVips,
    DropVips,
    Instance,
    Params,
    RemoveVips,
    SendAdvert,
    SendGarp,
    State,
    SyncGroup,
    Transition,
)

ME = ipaddress.IPv4Address("192.0.2.2")
LOW = ipaddress.IPv4Address("192.0.2.1")
HIGH = ipaddress.IPv4Address("192.0.2.3")
VIPS = (ipaddress.IPv4Address("192.0.2.10"),)
VIP_A, VIP_B = ipaddress.ip_interface("192.0.2.10/24"), ipaddress.ip_interface("192.0.2.11/24")


def inst(**kw) -> Instance:
    base = dict(name="VI_1", vrid=51, priority=100, interval_cs=100, primary=ME)
    base.update(kw)
    return Instance(**base)


def adv(priority: int, interval_cs: int = 100, version: int = 3) -> Advert:
    return Advert(version, 51, priority, interval_cs, VIPS)


def master(**kw) -> Instance:
    i = inst(**kw)
    i.start(0.0)
    i.tick(i.deadline)
    assert i.state is State.MASTER
    return i


def kinds(actions) -> list[type]:
    return [type(a) for a in actions]


def test_startup_goes_backup_with_master_down_timer() -> None:
    """6.4.1: non-owner sets Master_Adver_Interval and Master_Down_Timer, enters Backup."""
    i = inst()
    acts = i.start(0.0)
    assert i.state is State.BACKUP
    assert acts == [Transition(State.INIT, State.BACKUP, 100, "startup")]
    assert i.master_adver_cs == 100
    assert i.deadline == pytest.approx(3 + (256 - 100) / 256)


def test_owner_startup_goes_master_at_once() -> None:
    """6.4.1: priority 255 sends an advert, broadcasts GARP and becomes Master."""
    i = inst(priority=255)
    acts = i.start(0.0)
    assert i.state is State.MASTER
    assert kinds(acts)[:3] == [SendAdvert, AddVips, SendGarp]
    assert acts[0] == SendAdvert(255)


def test_skew_and_master_down_interval_v3_centiseconds() -> None:
    """6.1: Skew_Time = ((256-Priority)*Master_Adver_Interval)/256, in centiseconds."""
    i = inst(priority=200, interval_cs=10)
    i.start(0.0)
    assert i.skew_time() == pytest.approx((56 * 10 / 256) / 100)
    assert i.master_down_interval() == pytest.approx(0.3 + 56 * 10 / 256 / 100)


def test_skew_v2_is_independent_of_interval() -> None:
    """RFC 3768 6.1: Skew_Time = (256-Priority)/256 seconds."""
    i = inst(version=2, priority=200, interval_cs=300)
    i.start(0.0)
    assert i.skew_time() == pytest.approx(56 / 256)
    assert i.master_down_interval() == pytest.approx(9 + 56 / 256)


def test_backup_master_down_timer_fires_becomes_master() -> None:
    """6.4.2: on Master_Down_Timer expiry send advert, GARP, set Adver_Timer, go Master."""
    i = inst()
    i.start(0.0)
    assert i.tick(1.0) == []
    acts = i.tick(i.deadline)
    assert kinds(acts) == [SendAdvert, AddVips, SendGarp, Transition]
    assert i.state is State.MASTER
    assert i.deadline == pytest.approx(i.state_since + 1.0)


def test_backup_higher_advert_resets_down_timer_and_adopts_interval() -> None:
    """6.4.2: a higher advert sets Master_Adver_Interval from it and resets the timer."""
    i = inst()
    i.start(0.0)
    assert i.receive(adv(150, interval_cs=50), HIGH, 2.0) == []
    assert i.master_adver_cs == 50
    assert i.deadline == pytest.approx(2.0 + 1.5 + (156 * 50 / 256) / 100)


def test_backup_priority_zero_sets_skew_time() -> None:
    """6.4.2: a priority-0 advert sets Master_Down_Timer to Skew_Time."""
    i = inst()
    i.start(0.0)
    i.receive(adv(150), HIGH, 1.0)
    i.receive(adv(0), HIGH, 2.0)
    assert i.deadline == pytest.approx(2.0 + i.skew_time())


def test_backup_preempt_discards_lower_advert() -> None:
    """6.4.2: with Preempt_Mode, a lower-priority advert is discarded (timer runs out)."""
    i = inst()
    i.start(0.0)
    before = i.deadline
    i.receive(adv(50), LOW, 1.0)
    assert i.deadline == before


def test_backup_nopreempt_accepts_lower_advert() -> None:
    """6.4.2: with Preempt_Mode False, any advert resets Master_Down_Timer."""
    i = inst(preempt=False)
    i.start(0.0)
    i.receive(adv(50), LOW, 1.0)
    assert i.deadline == pytest.approx(1.0 + i.master_down_interval())


def test_preempt_delay_postpones_takeover() -> None:
    """keepalived-style preempt_delay: follow a lower master until the delay ends."""
    i = inst(preempt_delay=5.0)
    i.start(0.0)
    for t in range(1, 5):
        i.receive(adv(50), LOW, float(t))
        i.tick(float(t))
        assert i.state is State.BACKUP
    i.tick(6.0)  # the delay ends
    i.receive(adv(50), LOW, 6.0)
    while i.state is State.BACKUP:
        i.tick(i.deadline)
    assert i.state_since < 6.0 + i.master_down_interval() + 0.01


def test_master_sends_advert_every_interval() -> None:
    """6.4.3: on Adver_Timer expiry send an advert and reset the timer."""
    i = master()
    t = i.deadline
    assert i.tick(t) == [SendAdvert(100)]
    assert i.deadline == pytest.approx(t + 1.0)


def test_master_shutdown_sends_priority_zero() -> None:
    """6.4.3: Shutdown cancels Adver_Timer and sends an advert with priority 0."""
    i = master()
    acts = i.shutdown(10.0)
    assert acts[0] == SendAdvert(0)
    assert RemoveVips() in acts
    assert i.state is State.INIT and i.deadline is None


def test_master_answers_priority_zero_at_once() -> None:
    """6.4.3: a priority-0 advert makes the master advertise immediately."""
    i = master()
    assert i.receive(adv(0), HIGH, 5.0) == [SendAdvert(100)]


def test_master_yields_to_higher_priority() -> None:
    """6.4.3: a higher advert moves Master to Backup, removing the VIPs.

    One last advert at our priority lets the winner notice a split brain.
    """
    i = master()
    acts = i.receive(adv(200), HIGH, 5.0)
    assert kinds(acts) == [SendAdvert, RemoveVips, Transition]
    assert i.state is State.BACKUP
    assert i.master_address == HIGH


def test_equal_priority_higher_address_wins() -> None:
    """6.4.3: equal priority is decided by the larger primary address."""
    i = master()
    i.receive(adv(100), LOW, 5.0)
    assert i.state is State.MASTER
    i.receive(adv(100), HIGH, 6.0)
    assert i.state is State.BACKUP


def test_equal_priority_backup_with_lower_address_follows() -> None:
    """6.4.2 with 6.4.3's tie-break: a backup keeps following a higher-address peer."""
    i = inst()
    i.start(0.0)
    i.receive(adv(100), HIGH, 1.0)
    assert i.deadline == pytest.approx(1.0 + i.master_down_interval())


def test_master_asserts_itself_against_lower_rival() -> None:
    """6.4.3 discards a lower advert; we also re-advertise and GARP to heal split brain."""
    i = master()
    assert i.receive(adv(50), LOW, 5.0) == [SendAdvert(100), SendGarp(lower_prio=True)]
    assert i.state is State.MASTER
    # A rival that never hears us must not cause a GARP storm.
    assert i.receive(adv(50), LOW, 5.5) == [SendAdvert(100)]  # the same episode: no GARP
    assert i.receive(adv(50), LOW, 5.9) == []  # under half an interval since the last answer
    assert i.receive(adv(50), LOW, 6.5) == [SendAdvert(100), SendGarp(lower_prio=True)]
    # A new episode (the rival was silent for a while) re-announces at once.
    assert i.receive(adv(50), LOW, 10.0) == [SendAdvert(100), SendGarp(lower_prio=True)]


def test_a_flood_of_priority_0_or_rival_packets_is_not_reflected_one_for_one() -> None:
    """Each out-of-turn answer costs one multicast advert: at most one per half interval,
    the Adver_Timer's regular advert still going out on time."""
    for priority in (0, 50):
        i = master()
        answers = [act for k in range(100) for act in i.receive(adv(priority), LOW, 5.0 + k / 100)
                   if isinstance(act, SendAdvert)]
        assert len(answers) == 2, priority  # 5.00 and 5.50 within the second
        assert i.answers_suppressed == 98
        assert i.deadline is not None and i.deadline <= 6.5 + 1e-9  # the timer, reset by the 5.50 answer


def test_track_weight_shifts_priority() -> None:
    """Tracked objects add their weight to the advertised priority while failing."""
    i = master(priority=150)
    acts = i.set_tracked("if:eth1", -60, False, 5.0)
    assert acts == [SendAdvert(90)]
    i.set_tracked("if:eth1", -60, True, 6.0)
    assert i.effective_priority == 150


def test_track_weight_zero_is_fault() -> None:
    """Weight 0 sends a master to Fault with a priority-0 advert; recovery restarts it."""
    i = master()
    acts = i.set_tracked("vs:web", 0, False, 5.0)
    assert acts[:2] == [SendAdvert(0), RemoveVips()]
    assert i.state is State.FAULT and i.deadline is None
    i.set_tracked("vs:web", 0, True, 6.0)
    assert i.state is State.BACKUP


def test_priority_stays_in_range() -> None:
    """Tracking never produces 0 (shutdown) or 255 (owner)."""
    i = inst(priority=10)
    i.set_tracked("a", -100, False, 0.0)
    assert i.effective_priority == 1
    j = inst(priority=250)
    j.set_tracked("a", 100, False, 0.0)
    assert j.effective_priority == 254


def test_give_up_holds_backup() -> None:
    """A requested failover sends priority 0 and does not preempt back."""
    i = master(priority=200)
    acts = i.give_up(5.0)
    assert acts[0] == SendAdvert(0) and i.state is State.BACKUP
    i.receive(adv(100), LOW, 5.5)
    assert i.deadline == pytest.approx(5.5 + i.master_down_interval())


def test_a_master_remembers_the_last_other_router_it_heard() -> None:
    """Backups are silent: `failover` can only trust a backup the master once heard."""
    i = master(priority=200)
    assert i.peer_heard is None
    i.receive(adv(100), LOW, 5.0)  # a lower router that thought it was master
    assert i.peer_heard == LOW and i.state is State.MASTER


def test_sync_group_fault_and_master_move_together() -> None:
    """Sync group: Fault in one puts all in Fault; Master in one moves the others."""
    a, b = inst(name="a"), inst(name="b", vrid=52)
    g = SyncGroup("g", [a, b])
    a.start(0.0)
    b.start(0.0)
    t = a.deadline
    acts = a.tick(t)  # b's timer expires at the same moment: b's master is gone too
    extra = g.follow(a, acts, t)
    assert (a.state, b.state) == (State.MASTER, State.MASTER) and "b" in extra
    acts = a.set_tracked("if:x", 0, False, 10.0)
    g.follow(a, acts, 10.0)
    assert (a.state, b.state) == (State.FAULT, State.FAULT)
    acts = a.set_tracked("if:x", 0, True, 11.0)
    g.follow(a, acts, 11.0)
    assert (a.state, b.state) == (State.BACKUP, State.BACKUP)


def test_sync_group_waits_for_all_members_before_master() -> None:
    """Sync group: a member whose timer expires waits while a sibling still hears
    a master; when the last sibling's timer expires the group goes master at once."""
    a, b = inst(name="a"), inst(name="b", vrid=52)
    g = SyncGroup("g", [a, b])
    a.start(0.0)
    b.start(0.0)
    a.receive(adv(150), HIGH, 3.0)  # a's master is alive; b's is silent
    acts = b.tick(b.deadline)
    assert acts == [] and b.state is State.BACKUP and b.wants_master
    assert b.deadline is None
    t = a.deadline
    acts = a.tick(t)
    g.follow(a, acts, t)
    assert (a.state, b.state) == (State.MASTER, State.MASTER)


def test_sync_group_goes_master_on_the_first_timer_when_all_masters_fell_silent() -> None:
    """Adverts of a dead master's instances stop up to an interval apart: the group goes
    master on the first member's timer, not the last one's."""
    a, b = inst(name="a"), inst(name="b", vrid=52)
    g = SyncGroup("g", [a, b])
    a.start(0.0)
    b.start(0.0)
    a.receive(adv(150), HIGH, 3.0)
    b.receive(adv(150), HIGH, 3.0 + 0.9 * a.master_adver_cs / 100)  # b's last advert came later
    t = a.deadline
    acts = a.tick(t)
    g.follow(a, acts, t)
    assert (a.state, b.state) == (State.MASTER, State.MASTER)


# --- reload (reconfigure): same virtual router, new parameters ---------------------------


def params(**kw) -> Params:
    base = dict(priority=100, interval_cs=100, vips=(VIP_A,), track_keys=frozenset({"iface:eth0"}))
    base.update(kw)
    return Params(**base)


def test_reconfigure_backup_takes_the_values_and_its_timers_run_on() -> None:
    """A backup has nothing to tell anyone: no actions, and its Master_Down_Timer is
    the one it had (the new priority's Skew_Time applies from the next advert)."""
    i = inst(vips=(VIP_A,))
    i.start(0.0)
    deadline = i.deadline
    acts = i.reconfigure(params(priority=120, interval_cs=50, preempt=False, preempt_delay=2.0, vips=(VIP_B,)), 1.0)
    assert acts == [] and i.deadline == deadline and i.state is State.BACKUP
    assert (i.priority, i.interval_cs, i.preempt, i.preempt_delay, i.vips) == (120, 50, False, 2.0, (VIP_B,))


def test_reconfigure_master_unchanged_restarts_its_advert_timer_only() -> None:
    i = master(vips=(VIP_A,))
    assert i.reconfigure(params(preempt=False), 7.25) == []
    assert i.state is State.MASTER and i.deadline == pytest.approx(8.25)


def test_reconfigure_master_new_priority_is_advertised_at_once_on_the_new_interval() -> None:
    i = master(vips=(VIP_A,))
    assert i.reconfigure(params(priority=150, interval_cs=30), 7.0) == [SendAdvert(150)]
    assert i.deadline == pytest.approx(7.3)
    assert i.tick(7.3) == [SendAdvert(150)]


def test_reconfigure_master_swaps_vips_drops_the_gone_ones_and_announces_the_new_set() -> None:
    """In the order the edge carries them out: drop, add all, announce, advertise."""
    i = master(vips=(VIP_A,))
    assert i.reconfigure(params(vips=(VIP_B,)), 7.0) == [DropVips((VIP_A,)), AddVips(), SendGarp(), SendAdvert(100)]
    assert i.reconfigure(params(vips=(VIP_B, VIP_A)), 8.0) == [AddVips(), SendGarp(), SendAdvert(100)]
    assert i.state is State.MASTER and i.vips == (VIP_B, VIP_A)


def test_reconfigure_forgets_tracked_objects_the_config_dropped() -> None:
    """A failing tracked object no longer configured stops lowering the priority."""
    i = master(priority=150, vips=(VIP_A,))
    i.set_tracked("iface:eth0", 0, True, 1.0)
    i.set_tracked("track:eth1", -60, False, 1.0)
    assert i.effective_priority == 90
    acts = i.reconfigure(params(priority=150), 2.0)
    assert acts == [SendAdvert(150)] and i.track_weights == {"iface:eth0": 0} and not i.failing


def test_reconfigure_in_fault_or_before_start_does_nothing_visible() -> None:
    idle = inst(vips=(VIP_A,))
    assert idle.reconfigure(params(priority=200, vips=(VIP_B,)), 1.0) == [] and idle.state is State.INIT
    faulty = master(vips=(VIP_A,))
    faulty.set_tracked("iface:eth0", 0, False, 1.0)
    assert faulty.reconfigure(params(priority=200, vips=(VIP_B,)), 2.0) == []
    assert faulty.state is State.FAULT and faulty.deadline is None
