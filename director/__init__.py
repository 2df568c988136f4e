"""directord: a userspace LVS director daemon."""

__version__ = "0.1.0"
