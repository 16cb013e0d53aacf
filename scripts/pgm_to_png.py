#!/usr/bin/env python3
"""Converts a binary 8-bit PGM (P5, as FedGAN writes OUT/samples/round_NNNN.pgm)
into a grey PNG, with the standard library only (zlib).

  scripts/pgm_to_png.py IN.pgm OUT.png [--scale N]

--scale repeats each pixel N x N times (default 1). Exit status 0, or 2 for a
file that is not a P5 PGM with maxval 255.
"""
import argparse
import struct
import sys
import zlib


def read_pgm(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval, separated by whitespace
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError("truncated header")
        fields.append(data[start:pos])
    pos += 1  # the single whitespace byte before the pixels
    if fields[0] != b"P5" or int(fields[3]) != 255:
        raise ValueError("not a P5 PGM with maxval 255")
    width, height = int(fields[1]), int(fields[2])
    pixels = data[pos:pos + width * height]
    if len(pixels) != width * height:
        raise ValueError(f"expected {width * height} pixels, found {len(pixels)}")
    return width, height, pixels


def write_png(path, width, height, pixels, scale):
    rows = []
    for y in range(height):
        row = pixels[y * width:(y + 1) * width]
        if scale > 1:
            row = bytes(v for v in row for _ in range(scale))
        rows.extend([b"\x00" + row] * scale)  # filter type 0 per scanline

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width * scale, height * scale, 8, 0, 0, 0, 0)  # 8-bit greyscale
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
                + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pgm")
    ap.add_argument("png")
    ap.add_argument("--scale", type=int, default=1)
    a = ap.parse_args()
    try:
        w, h, px = read_pgm(a.pgm)
    except (OSError, ValueError) as e:
        print(f"pgm_to_png: {a.pgm}: {e}", file=sys.stderr)
        return 2
    write_png(a.png, w, h, px, max(1, a.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
