#!/usr/bin/env python3
"""Draws the page's app icons (web/icons/icon-{192,512}.png): a white T-shirt, Fashion-MNIST's
class 0, on the page's blue, with a 10% margin so it also serves as a maskable icon. Plain
Python (zlib), nothing downloaded: run it again after changing the drawing."""
import struct
import zlib
from pathlib import Path

BLUE = (31, 119, 180)
WHITE = (255, 255, 255)
# The shirt in a unit square, clockwise from the left of the collar.
SHIRT = [(0.38, 0.22), (0.45, 0.22), (0.5, 0.28), (0.55, 0.22), (0.62, 0.22), (0.8, 0.32),
         (0.74, 0.45), (0.67, 0.42), (0.67, 0.78), (0.33, 0.78), (0.33, 0.42), (0.26, 0.45), (0.2, 0.32)]


def inside(x, y, polygon):
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def png(size):
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter: none
        for px in range(size):
            # 4×4 samples per pixel: smooth edges.
            cover = sum(inside((px + (i + 0.5) / 4) / size, (py + (j + 0.5) / 4) / size, SHIRT)
                        for i in range(4) for j in range(4)) / 16
            row += bytes(round(b + (w - b) * cover) for b, w in zip(BLUE, WHITE))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "web" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        (out / f"icon-{size}.png").write_bytes(png(size))
        print(out / f"icon-{size}.png")
