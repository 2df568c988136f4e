"""Health checks: probes, rise/fall scheduling and verdicts. Never touches IPVS or VRRP.

The API, in targets and checks (the director maps its real servers to them, see
director.daemon.health):

    from healthcheck import Scheduler, Target, probe_all

    sched = Scheduler(on_transition, on_weight=on_weight)
    #   on_transition(key, up, result): rise/fall flipped; on_weight(key, weight, result):
    #   an exec check's dynamic weight changed (None: back to the configured weight)
    sched.sync({key: (Target(address, port), check), ...})   # start, and on every reload
    sched.snapshots()                                  # {key: TargetStatus} for status/metrics
    await sched.close()                                # shutdown
    await probe_all([(target, check), ...])            # `directord probe`
"""

from healthcheck.probes import probe
from healthcheck.result import ProbeResult, Target
from healthcheck.run_once import probe_all
from healthcheck.scheduler import ProbeKey, Scheduler, TargetStatus

__all__ = [
    "ProbeKey",
    "ProbeResult",
    "Scheduler",
    "Target",
    "TargetStatus",
    "probe",
    "probe_all",
]
