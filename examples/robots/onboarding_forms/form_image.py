"""A keyword that draws a filled-in form as a PNG, with the standard library only.

A stand-in for a screenshot of a back-office application: the robot runs headless, so
it draws the form itself (a title bar and one row per field, bar lengths following
the text lengths) and saves it where Robot's Screenshot library would: ${OUTPUT DIR}.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

WIDTH = 360
ROW = 24
CHAR = 6  # pixels of bar per character of text
WHITE, BLUE, GREY, INK = (255, 255, 255), (33, 87, 166), (200, 204, 210), (40, 44, 52)


def render_form_image(path: str, title: str, fields: dict[str, object]) -> str:
    """Draw ``fields`` (label: value) under ``title`` into the PNG file ``path``."""
    height = ROW * (len(fields) + 2)
    pixels = [[WHITE] * WIDTH for _ in range(height)]
    _box(pixels, 0, 0, WIDTH, ROW, BLUE)
    _box(pixels, 8, 8, min(WIDTH - 16, CHAR * len(title)), 8, WHITE)
    for row, (label, value) in enumerate(fields.items(), start=1):
        top = ROW * row + 8
        _box(pixels, 8, top, CHAR * len(label), 8, GREY)
        _box(pixels, 140, top, min(WIDTH - 148, CHAR * len(str(value))), 8, INK)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(_png(pixels))
    return path


def _box(pixels: list[list[tuple[int, int, int]]], x: int, y: int, w: int, h: int,
         colour: tuple[int, int, int]) -> None:
    for row in pixels[y:y + h]:
        row[x:x + w] = [colour] * len(row[x:x + w])


def _png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
