"""The PNG encoder (decoded back with zlib) and the text report."""

from __future__ import annotations

import struct
import zlib

from director.drill.compare import summarize
from director.drill.core import Bounds, Conn, Event, Request, Run, breaches, measure
from director.drill.png import Raster
from director.drill.report import text_report, timeline_png


def decode(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the filtered scanlines of an 8-bit RGB PNG, checking every CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks.append((kind, data))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color) == (8, 2)
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    return width, height, raw


def test_png_pixels_round_trip() -> None:
    img = Raster(5, 4)
    img.rect(1, 1, 3, 2, (255, 0, 0))
    img.rect(-5, 3, 50, 9, (0, 0, 255))  # clipped
    width, height, raw = decode(img.png())
    assert (width, height) == (5, 4)
    row = lambda y: raw[y * 16 + 1:(y + 1) * 16]  # noqa: E731
    assert row(0) == b"\xff" * 15
    assert row(1) == b"\xff\xff\xff" + b"\xff\x00\x00" * 2 + b"\xff\xff\xff" * 2
    assert row(3) == b"\x00\x00\xff" * 5


def test_text_draws_pixels() -> None:
    img = Raster(40, 12)
    img.text(0, 0, "LB1", scale=2)
    assert b"\x00\x00\x00" in bytes(img.pixels)


def run_() -> Run:
    events = [Event(0, "lb1", "up"), Event(0, "lb1", "vip_add"), Event(0, "lb2", "up"),
              Event(1.9, "lb1", "advert"), Event(2, "lb1", "down"),
              Event(2.8, "lb2", "vip_add"), Event(2.8, "lb2", "garp")]
    reqs = [Request(i / 10, not 20 <= i < 28, f"rs{i % 3 + 1}") for i in range(60)]
    return Run("sigkill", "directord", 0, 2, 6, events, reqs, [Conn(0, 5.9), Conn(0, 2.1, 2.2, "reset")])


def test_timeline_png_decodes() -> None:
    width, height, _ = decode(timeline_png([run_(), run_()]))
    assert width > 500 and height > 100


def test_text_report_side_by_side() -> None:
    fig = measure(run_(), ["rs1", "rs2", "rs3"])
    verdicts = {("directord", "sigkill"): breaches("sigkill", fig, Bounds(1.0, None, 0))}
    text = text_report({("directord", "sigkill"): summarize([fig])}, ["directord", "keepalived"], ["sigkill"], verdicts,
                       "hdr")
    assert "directord" in text and "keepalived" in text
    assert "800 ms" in text and "8/60" in text and "1/2" in text
    assert "-100 ms" in text and "900 ms" in text  # the last advert before the kill, and from it to the GARP
    assert "BOUND BROKEN: 1 long-lived connections lost > 0" in text
    assert text.rstrip().endswith("1 bound(s) broken")


def test_text_report_rounds_give_medians_ranges_and_the_comparison() -> None:
    ours = [measure(run_(), ["rs1", "rs2", "rs3"]) for _ in range(3)]
    slower = run_()
    slower.events = [e if e.director != "lb2" else type(e)(e.t + 0.1, e.director, e.kind) for e in slower.events]
    theirs = [measure(slower, ["rs1", "rs2", "rs3"]) for _ in range(3)]
    results = {("directord", "sigkill"): summarize(ours), ("keepalived", "sigkill"): summarize(theirs)}
    text = text_report(results, ["directord", "keepalived"], ["sigkill"], {}, "hdr")
    assert "800 ms (800-800)" in text and "900 ms (900-900)" in text
    assert "24/180" in text and "3/6" in text  # totals over the rounds
    assert "directord against keepalived (medians and totals over 3 rounds):" in text
    assert "sigkill: ahead or level on every figure" in text
    text = text_report({("directord", "sigkill"): summarize(theirs), ("keepalived", "sigkill"): summarize(ours)},
                       ["directord", "keepalived"], ["sigkill"], {}, "hdr")
    assert "sigkill: behind on VIP takeover: median 900 ms against 800 ms; last advert to takeover" in text


def test_comparison_names_a_side_that_did_not_run() -> None:
    ran = summarize([measure(run_(), ["rs1", "rs2", "rs3"])])
    failed = run_()
    failed.error = "precondition: timed out"
    broken = summarize([measure(failed, ["rs1", "rs2", "rs3"])])
    text = text_report({("directord", "sigkill"): broken, ("keepalived", "sigkill"): ran},
                       ["directord", "keepalived"], ["sigkill"], {}, "hdr")
    assert "sigkill: not compared: directord did not run" in text and "error: precondition: timed out" in text
