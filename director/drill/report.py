"""The drill's outputs: a text table (implementations side by side) and a PNG timeline."""

from __future__ import annotations

from collections.abc import Sequence

from director.drill.core import SCENARIOS, Figures, Run, director_segments
from director.drill.png import Raster


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _cell(fig: Figures | None, key: str) -> str:
    if fig is None:
        return "not run"
    if fig.error:
        return "error"
    if key == "takeover":
        return _sec(fig.takeover)
    if key == "last_advert":
        if fig.last_advert is None:
            return "-"
        return f"{fig.last_advert * 1000:+.0f} ms" + (" prio 0" if fig.resigned else "")
    if key == "after_advert":
        return _sec(fig.after_advert)
    if key == "failed":
        return f"{fig.failed_requests}/{fig.requests}"
    if key == "lost":
        return f"{fig.lost_connections}/{fig.connections}"
    if key == "recovery":
        return _sec(fig.recovery)
    return fig.holder or "nobody"


ROWS = (("takeover", "VIP takeover"), ("last_advert", "old master's last adv"), ("after_advert", "  to takeover"),
        ("failed", "failed requests"), ("lost", "long-lived lost"), ("recovery", "all servers serve"),
        ("holder", "VIP ends on"))


def text_report(results: dict[tuple[str, str], Figures], implementations: Sequence[str], scenarios: Sequence[str],
                verdicts: dict[tuple[str, str], list[str]], header: str) -> str:
    """One block per scenario, one column per implementation."""
    width = 18
    lines = [header, ""]
    for scenario in scenarios:
        lines.append(f"== {SCENARIOS[scenario].title} ({scenario})")
        lines.append(" " * 22 + "".join(f"{impl:>{width}}" for impl in implementations))
        for key, label in ROWS:
            cells = "".join(f"{_cell(results.get((impl, scenario)), key):>{width}}" for impl in implementations)
            lines.append(f"  {label:<20}{cells}")
        for impl in implementations:
            fig = results.get((impl, scenario))
            if fig is not None and fig.error:
                lines.append(f"  {impl}: error: {fig.error}")
            if fig is not None and fig.lost_reasons:
                why = ", ".join(f"{n} {reason}" for reason, n in sorted(fig.lost_reasons.items()))
                lines.append(f"  {impl}: long-lived connections lost: {why}")
            for breach in verdicts.get((impl, scenario), []):
                lines.append(f"  {impl}: BOUND BROKEN: {breach}")
        lines.append("")
    broken = sum(len(v) for v in verdicts.values())
    lines.append("all bounds held" if not broken else f"{broken} bound(s) broken")
    return "\n".join(lines) + "\n"


COLORS = {"master": (46, 160, 67), "backup": (66, 133, 244), "down": (150, 150, 150), "cut": (245, 150, 30)}
OK, FAIL, LOST, FAULT = (46, 160, 67), (220, 40, 40), (220, 40, 40), (0, 0, 0)


def timeline_png(runs: Sequence[Run], pixels_per_second: float = 60.0, max_width: int = 1600) -> bytes:
    """Per run: lb1 and lb2 state bars, requests (green ok / red failed ticks) and lost long-lived
    connections, on one time axis starting at each run's start; the fault is a black line."""
    label_w, bar_h, gap = 260, 14, 6
    span = max((r.end - r.start for r in runs), default=1.0)
    pixels_per_second = min(pixels_per_second, (max_width - label_w - 20) / max(span, 1.0))
    width = label_w + int(span * pixels_per_second) + 20
    block = 18 + 3 * (bar_h + gap) + 12
    legend_h = 30
    img = Raster(width, legend_h + block * max(1, len(runs)))
    x = 8
    for name, color in (*COLORS.items(), ("request ok", OK), ("failed or lost", FAIL)):
        img.rect(x, 8, x + 14, 22, color)
        img.text(x + 18, 10, name)
        x += 18 + len(name) * 8 + 20

    def px(run: Run, t: float) -> int:
        return label_w + int((t - run.start) * pixels_per_second)

    for index, run in enumerate(runs):
        top = legend_h + index * block
        img.text(8, top + 2, f"{run.implementation} {run.scenario}")
        step = 1 if pixels_per_second >= 20 else 10
        for second in range(0, int(run.end - run.start) + 1, step):
            img.vline(label_w + int(second * pixels_per_second), top + 16, top + block - 10, (225, 225, 225))
        for row, director in enumerate(("lb1", "lb2")):
            y = top + 18 + row * (bar_h + gap)
            img.text(8, y + 2, director)
            for seg in director_segments(run.events, director, run.start, run.end, initial="down"):
                img.rect(px(run, seg.start), y, max(px(run, seg.end), px(run, seg.start) + 1), y + bar_h,
                         COLORS[seg.state])
        y = top + 18 + 2 * (bar_h + gap)
        img.text(8, y + 2, "requests")
        for req in run.requests:
            img.rect(px(run, req.t), y, px(run, req.t) + 2, y + bar_h, OK if req.ok else FAIL)
        for conn in run.conns:
            if conn.closed is not None:
                img.rect(px(run, conn.closed) - 1, y - 3, px(run, conn.closed) + 2, y + bar_h + 3, LOST)
        img.vline(px(run, run.fault), top + 14, top + block - 8, FAULT)
    return img.png()
