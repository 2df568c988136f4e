"""Failover drills against a running lab (scripts/lab.py): load, faults, figures, report."""
