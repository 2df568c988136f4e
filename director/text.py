"""Wording shared by the CLI and the daemon's one-line summaries."""


def counted(n: int, noun: str) -> str:
    """`1 service`, `2 services`: counts read as English, whatever the number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
