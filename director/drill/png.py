"""A tiny raster and PNG encoder (zlib + struct): enough to draw a drill timeline without a
plotting library. Rectangles, lines and a 3x5 pixel font for labels."""

from __future__ import annotations

import struct
import zlib

Color = tuple[int, int, int]

# 3x5 glyphs, rows top to bottom, 3 bits per row (4 = left pixel).
_FONT = {
    "0": "75557", "1": "26227", "2": "71747", "3": "71717", "4": "55711", "5": "74717", "6": "74757",
    "7": "71111", "8": "75757", "9": "75717", "A": "25755", "B": "65656", "C": "74447", "D": "65556",
    "E": "74647", "F": "74644", "G": "74557", "H": "55755", "I": "72227", "J": "11157", "K": "55655",
    "L": "44447", "M": "57555", "N": "65555", "O": "25552", "P": "75744", "Q": "25573", "R": "65655",
    "S": "34716", "T": "72222", "U": "55557", "V": "55552", "W": "55575", "X": "55255", "Y": "55222",
    "Z": "71247", " ": "00000", "-": "00700", ".": "00002", ":": "02020", "(": "24442", ")": "42224",
    "+": "02720", "/": "11244", "_": "00007", "=": "07070", "%": "51245",
}


class Raster:
    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill [x0, x1) x [y0, y1), clipped to the raster."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x1 <= x0:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def hline(self, x0: int, x1: int, y: int, color: Color) -> None:
        self.rect(x0, y, x1, y + 1, color)

    def vline(self, x: int, y0: int, y1: int, color: Color) -> None:
        self.rect(x, y0, x + 1, y1, color)

    def text(self, x: int, y: int, text: str, color: Color = (0, 0, 0), scale: int = 2) -> None:
        """Upper-case 3x5 text; unknown characters print as blanks."""
        for char in text.upper():
            glyph = _FONT.get(char, "00000")
            for row, bits in enumerate(glyph):
                for col in range(3):
                    if int(bits) & (4 >> col):
                        self.rect(x + col * scale, y + row * scale, x + (col + 1) * scale, y + (row + 1) * scale,
                                  color)
            x += 4 * scale

    def png(self) -> bytes:
        """The raster as an 8-bit RGB PNG."""
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride]) for y in range(self.height))
        return (b"\x89PNG\r\n\x1a\n"
                + _chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
                + _chunk(b"IDAT", zlib.compress(raw, 6))
                + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
