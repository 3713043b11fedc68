"""Small, real, deterministic pictures: PNG images and animated PNG "videos", written with zlib and struct.

The picture is a grid of coloured tiles whose palette, tile size and layout come from a hash of the prompt,
so the same prompt always gives the same bytes and two prompts almost always look different. Each tile row
is one pixel row repeated, so even a 2048 x 2048 image is built quickly and compresses to a few kilobytes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIDEO_FRAMES = 4
VIDEO_FRAME_MS = 250


def picture_png(prompt: str, width: int, height: int) -> bytes:
    """A ``width`` x ``height`` RGB PNG whose pattern and colours depend on ``prompt``."""
    return _png(width, height, [_raw_rows(prompt, width, height, 0)], None)


def animation_png(prompt: str, width: int, height: int) -> bytes:
    """An animated PNG (APNG) of ``VIDEO_FRAMES`` frames: the prompt's pattern sliding one tile per frame.

    The emulator's stand-in for a video file: real and playable by browsers, yet needing no encoder.
    """
    frames = [_raw_rows(prompt, width, height, shift) for shift in range(VIDEO_FRAMES)]
    return _png(width, height, frames, VIDEO_FRAME_MS)


def _palette(prompt: str) -> tuple[list[bytes], int]:
    """Four colours and a tile size (16-128 px) from the prompt's hash."""
    digest = hashlib.sha256(prompt.encode()).digest()
    colours = [bytes(digest[i : i + 3]) for i in range(0, 12, 3)]
    return colours, 16 << (digest[12] % 4)


def _raw_rows(prompt: str, width: int, height: int, shift: int) -> bytes:
    """The filtered scanlines of one frame (filter byte 0 before each row), compressed."""
    colours, tile = _palette(prompt)
    digest = hashlib.sha256(b"layout" + prompt.encode()).digest()
    compressor = zlib.compressobj(9)
    out: list[bytes] = []
    for band in range((height + tile - 1) // tile):
        row = b"".join(
            colours[(digest[(band * 7 + column + shift) % len(digest)] + band + column) % len(colours)] * tile
            for column in range((width + tile - 1) // tile)
        )[: width * 3]
        line = b"\x00" + row
        out.append(compressor.compress(line * min(tile, height - band * tile)))
    out.append(compressor.flush())
    return b"".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, frames: list[bytes], frame_ms: int | None) -> bytes:
    """A PNG of one frame, or an APNG (``acTL``/``fcTL``/``fdAT``) when ``frame_ms`` is given."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    chunks = [PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if frame_ms is None:
        chunks.append(_chunk(b"IDAT", frames[0]))
    else:
        chunks.append(_chunk(b"acTL", struct.pack(">II", len(frames), 0)))  # loops forever
        sequence = _counter()
        for i, frame in enumerate(frames):
            control = struct.pack(">IIIIIHHBB", next(sequence), width, height, 0, 0, frame_ms, 1000, 0, 0)
            chunks.append(_chunk(b"fcTL", control))
            if i == 0:
                chunks.append(_chunk(b"IDAT", frame))
            else:
                chunks.append(_chunk(b"fdAT", struct.pack(">I", next(sequence)) + frame))
    chunks.append(_chunk(b"IEND", b""))
    return b"".join(chunks)


def _counter() -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1
