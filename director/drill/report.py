"""The drill's outputs: a text table (implementations side by side) and a PNG timeline."""

from __future__ import annotations

from collections.abc import Sequence

from director.drill.compare import Spread, Summary, trailing
from director.drill.core import SCENARIOS, Run, director_segments
from director.drill.png import Raster


def _ms(value: Spread | None, signed: bool = False) -> str:
    """A time figure: "820 ms" from one round, "820 ms (735-882)" as median (range) from more."""
    if value is None:
        return "-"
    fmt = "{:+.0f}" if signed else "{:.0f}"
    text = fmt.format(value.median * 1000) + " ms"
    if value.samples > 1:
        sep = ".." if signed else "-"
        text += f" ({fmt.format(value.low * 1000)}{sep}{fmt.format(value.high * 1000)})"
    return text


def _cell(summary: Summary | None, key: str) -> str:
    if summary is None:
        return "not run"
    if not summary.rounds:
        return "error"
    if key in ("takeover", "after_advert", "recovery"):
        return _ms(getattr(summary, key))
    if key == "last_advert":
        text = _ms(summary.last_advert, signed=True)
        if summary.resigned:
            text += " prio 0" + (f" x{summary.resigned}" if summary.resigned < summary.rounds else "")
        return text
    if key == "failed":
        return f"{summary.failed}/{summary.requests}"
    if key == "lost":
        return f"{summary.lost}/{summary.connections}"
    if len(summary.holders) == 1:
        return summary.holders[0][0]
    return ", ".join(f"{holder} x{n}" for holder, n in summary.holders)


ROWS = (("takeover", "VIP takeover"), ("last_advert", "old master's last adv"), ("after_advert", "  to takeover"),
        ("failed", "failed requests"), ("lost", "long-lived lost"), ("recovery", "all servers serve"),
        ("holder", "VIP ends on"))


def text_report(results: dict[tuple[str, str], Summary], implementations: Sequence[str], scenarios: Sequence[str],
                verdicts: dict[tuple[str, str], list[str]], header: str, recovery_step: float = 0.0) -> str:
    """One block per scenario, one column per implementation; with several rounds, times are
    median (range) and counts are totals; then where the first implementation trails the others
    (`recovery_step`: see compare.trailing)."""
    rounds = max((s.rounds + len(s.errors) for s in results.values()), default=1)
    width = 18 if rounds == 1 else 26
    lines = [header, ""]
    for scenario in scenarios:
        lines.append(f"== {SCENARIOS[scenario].title} ({scenario})")
        lines.append(" " * 22 + "".join(f"{impl:>{width}}" for impl in implementations))
        for key, label in ROWS:
            cells = "".join(f"{_cell(results.get((impl, scenario)), key):>{width}}" for impl in implementations)
            lines.append(f"  {label:<20}{cells}")
        for impl in implementations:
            summary = results.get((impl, scenario))
            if summary is None:
                continue
            for error in summary.errors:
                lines.append(f"  {impl}: error: {error}")
            if summary.lost_reasons:
                why = ", ".join(f"{n} {reason}" for reason, n in summary.lost_reasons)
                lines.append(f"  {impl}: long-lived connections lost: {why}")
            for breach in verdicts.get((impl, scenario), []):
                lines.append(f"  {impl}: BOUND BROKEN: {breach}")
        lines.append("")
    lines += _comparison(results, implementations, scenarios, rounds, recovery_step)
    broken = sum(len(v) for v in verdicts.values())
    lines.append("all bounds held" if not broken else f"{broken} bound(s) broken")
    return "\n".join(lines) + "\n"


def _comparison(results: dict[tuple[str, str], Summary], implementations: Sequence[str], scenarios: Sequence[str],
                rounds: int, recovery_step: float) -> list[str]:
    """Where the first implementation trails each other one, scenario by scenario."""
    if len(implementations) < 2:
        return []
    ours, others = implementations[0], implementations[1:]
    basis = "one round each" if rounds == 1 else f"medians and totals over {rounds} rounds"
    lines = []
    if recovery_step:
        basis += f"; all servers serve counts as level within {recovery_step * 1000:.0f} ms, its resolution"
    for other in others:
        lines.append(f"{ours} against {other} ({basis}):")
        for scenario in scenarios:
            mine, theirs = results.get((ours, scenario)), results.get((other, scenario))
            if mine is None or theirs is None:
                continue
            if not mine.rounds or not theirs.rounds:
                verdict = f"not compared: {ours if not mine.rounds else other} did not run"
            elif behind := trailing(mine, theirs, recovery_step):
                verdict = "behind on " + "; ".join(behind)
            else:
                verdict = "ahead or level on every figure"
            lines.append(f"  {scenario}: {verdict}")
        lines.append("")
    return lines


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
