"""Health checks: probes, rise/fall scheduling and verdicts. Never touches IPVS or VRRP."""
