"""Whole-file validation of a PNG image (standard library only).

Figures are served back exactly as uploaded, so an upload must be a PNG and nothing else:
the signature, every chunk's length and CRC, a valid IHDR first, image data whose
decompressed size is exactly what the header implies (a row filter byte per scanline
included), IEND last and no byte after it. Decompression is bounded by that size, so a
small file cannot expand into gigabytes.
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Largest decoded image accepted: far beyond any report figure, far below a zip bomb.
MAX_RAW_BYTES = 256 * 1024 * 1024
# Allowed bit depths per colour type, and the channels each colour type has.
_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
          (1, 0, 2, 2), (0, 1, 1, 2))


class PngError(ValueError):
    """The bytes are not one complete, consistent PNG file."""


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], len(SIGNATURE)
    while position < len(data):
        if position + 12 > len(data):
            raise PngError("file ends inside a chunk header")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise PngError(f"chunk {kind!r} runs past the end of the file")
        payload = data[position + 8:end - 4]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + payload) != crc:
            raise PngError(f"chunk {kind!r} fails its CRC")
        chunks.append((kind, payload))
        position = end
        if kind == b"IEND":
            break
    if position != len(data):
        raise PngError(f"{len(data) - position} bytes follow the IEND chunk")
    return chunks


def _raw_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines the image data must inflate to."""
    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits_per_pixel + 7) // 8)

    if not interlaced:
        return rows(width, height)
    return sum(rows((width - x0 + dx - 1) // dx if width > x0 else 0,
                    (height - y0 + dy - 1) // dy if height > y0 else 0)
               for x0, y0, dx, dy in _ADAM7)


def check_png(data: bytes) -> None:
    """Return if `data` is one whole, valid PNG file; PngError saying what is wrong else."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG file (wrong signature)")
    chunks = _chunks(data)
    kinds = [kind for kind, _ in chunks]
    if not kinds or kinds[0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise PngError("the first chunk must be a 13-byte IHDR")
    if kinds[-1] != b"IEND":
        raise PngError("the file ends without an IEND chunk")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1])
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise PngError(f"image size {width}x{height} is not valid")
    if depth not in _BIT_DEPTHS.get(colour, ()) or compression or filtering \
            or interlace not in (0, 1):
        raise PngError("IHDR holds an invalid colour type, bit depth or method")
    idat = [index for index, kind in enumerate(kinds) if kind == b"IDAT"]
    if not idat or idat != list(range(idat[0], idat[-1] + 1)):
        raise PngError("image data (IDAT) is missing or not contiguous")
    if colour == 3 and b"PLTE" not in kinds[:idat[0]]:
        raise PngError("a palette image has no PLTE chunk before its data")
    expected = _raw_size(width, height, depth * _CHANNELS[colour], interlace == 1)
    if expected > MAX_RAW_BYTES:
        raise PngError(f"image decodes to {expected} bytes; at most {MAX_RAW_BYTES} allowed")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(chunks[i][1] for i in idat), expected + 1)
    except zlib.error as exc:
        raise PngError(f"image data does not decompress: {exc}") from None
    if len(raw) != expected or not inflater.eof:
        raise PngError(f"image data decompresses to {len(raw)}{'+' if not inflater.eof else ''}"
                       f" bytes, the header implies {expected}")
    if interlace == 0:
        row = 1 + (width * depth * _CHANNELS[colour] + 7) // 8
        if max(raw[::row]) > 4:
            raise PngError("a scanline uses an unknown filter type")
