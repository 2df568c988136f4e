"""Failover drills against a running lab (`python -m scripts.lab up`): load, faults, figures, report."""
