"""A JPEG extended sequential encoder (ITU-T T.81 process 2 and 4: DCT, Huffman, 8 or 12 bits): the lossy transfer
syntax 1.2.840.10008.1.2.4.51 that Orthanc's DCMTK writes for images of up to 12 bits, and that neither pydicom's
plugins nor Pillow (8 bits only) write.

Grey images only (one component); the IJG quality-90 scaling of T.81 Annex K's luminance table (DCMTK's default),
8x8 blocks level-shifted and transformed by the orthonormal DCT (T.81 A.3.3), quantized, zig-zag ordered, their DC
differences and AC run/size symbols coded with Huffman tables optimal for the image (``jpeg_lossless`` builds
them), bits packed with 0xFF bytes stuffed. The tests decode what it writes with DCMTK's dcmdjpeg.
"""

from __future__ import annotations

import struct

import numpy

from .jpeg_lossless import _canonical_codes, _pack, _segment

QUALITY = 90
_LUMINANCE = numpy.array([  # T.81 Table K.1
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
_ZIGZAG = numpy.array(sorted(((row, column) for row in range(8) for column in range(8)),
                             key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 == 0 else p[0])))
_ZIGZAG_INDEX = _ZIGZAG[:, 0] * 8 + _ZIGZAG[:, 1]
_DCT = numpy.array([[(numpy.sqrt(0.125) if u == 0 else 0.5) * numpy.cos((2 * x + 1) * u * numpy.pi / 16)
                     for x in range(8)] for u in range(8)])


def quantization_table(quality: int = QUALITY) -> numpy.ndarray:
    """The IJG scaling of the luminance table (``jpeg_quality_scaling``), in natural (row-major) order."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return numpy.clip((_LUMINANCE * scale + 50) // 100, 1, 255)


def encode_frame(frame: numpy.ndarray, precision: int) -> bytes:
    """One grey frame (rows x columns of unsigned samples below 2**precision; precision 8 or 12)."""
    if frame.ndim != 2 or precision not in (8, 12):
        raise ValueError("JPEG extended encodes one component of 8 or 12 bits")
    rows, columns = frame.shape
    padded = numpy.pad(frame.astype(numpy.float64), ((0, -rows % 8), (0, -columns % 8)), mode="edge")
    padded -= 1 << (precision - 1)
    blocks = padded.reshape(padded.shape[0] // 8, 8, padded.shape[1] // 8, 8).swapaxes(1, 2).reshape(-1, 8, 8)
    table = quantization_table()
    coefficients = _DCT @ blocks @ _DCT.T
    quantized = numpy.rint(coefficients / table).astype(numpy.int64).reshape(-1, 64)[:, _ZIGZAG_INDEX]
    dc_symbols, ac_symbols, stream = _symbols(quantized)
    dc_table, dc_codes = _table(dc_symbols)
    ac_table, ac_codes = _table(ac_symbols)
    words, lengths = [], []
    for kind, symbol, extra, size in stream:
        codes, code_lengths = (dc_codes if kind == 0 else ac_codes)
        words.append((int(codes[symbol]) << size) | extra)
        lengths.append(int(code_lengths[symbol]) + size)
    data = _pack(numpy.array(words, dtype=numpy.int64), numpy.array(lengths, dtype=numpy.int64))
    zigzag_table = table.reshape(64)[_ZIGZAG_INDEX]
    return b"".join((
        b"\xff\xd8",
        _segment(0xDB, b"\x00" + bytes(int(value) for value in zigzag_table)),
        _segment(0xC1, struct.pack(">BHHB", precision, rows, columns, 1) + b"\x01\x11\x00"),
        _segment(0xC4, b"\x00" + dc_table),
        _segment(0xC4, b"\x10" + ac_table),
        _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        data,
        b"\xff\xd9",
    ))


def _category(value: int) -> int:
    return abs(value).bit_length()


def _extra(value: int, size: int) -> int:
    return value if value >= 0 else (value - 1) & ((1 << size) - 1)


def _symbols(quantized: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray, list[tuple[int, int, int, int]]]:
    """The coded stream (kind 0 DC / 1 AC, symbol, additional bits, their count) and each table's counts."""
    dc_counts, ac_counts = numpy.zeros(257, dtype=numpy.int64), numpy.zeros(257, dtype=numpy.int64)
    stream: list[tuple[int, int, int, int]] = []
    previous = 0
    for block in quantized.tolist():
        difference = block[0] - previous
        previous = block[0]
        size = _category(difference)
        stream.append((0, size, _extra(difference, size), size))
        dc_counts[size] += 1
        run = 0
        last = max((index for index in range(1, 64) if block[index]), default=0)
        for value in block[1:last + 1]:
            if value == 0:
                run += 1
                continue
            while run > 15:
                stream.append((1, 0xF0, 0, 0))
                ac_counts[0xF0] += 1
                run -= 16
            size = _category(value)
            symbol = (run << 4) | size
            stream.append((1, symbol, _extra(value, size), size))
            ac_counts[symbol] += 1
            run = 0
        if last < 63:
            stream.append((1, 0x00, 0, 0))  # end of block
            ac_counts[0] += 1
    return dc_counts, ac_counts, stream


def _table(counts: numpy.ndarray) -> tuple[bytes, tuple[numpy.ndarray, numpy.ndarray]]:
    """A Huffman table (BITS, HUFFVAL) optimal for ``counts`` (a reserved symbol keeps all-ones codes unused), and
    each symbol's code and length."""
    import heapq

    symbols = [symbol for symbol in range(256) if counts[symbol]] or [0]
    heap = [(int(counts[symbol]), symbol, [symbol]) for symbol in symbols] + [(0, 256, [256])]
    heapq.heapify(heap)
    depth = dict.fromkeys([*symbols, 256], 0)
    order = 257
    while len(heap) > 1:
        first, second = heapq.heappop(heap), heapq.heappop(heap)
        for symbol in first[2] + second[2]:
            depth[symbol] += 1
        heapq.heappush(heap, (first[0] + second[0], order, first[2] + second[2]))
        order += 1
    if max(depth.values()) > 16:  # a skewed histogram: flat 8-bit codes fit any 255 symbols
        depth = dict.fromkeys(depth, 8)
    ranked = sorted(depth, key=lambda symbol: (depth[symbol], symbol))
    ranked.remove(256)
    bits = [0] * 16
    for symbol in ranked:
        bits[depth[symbol] - 1] += 1
    codes, lengths = _canonical_codes(bits, ranked, 257)
    return bytes(bits) + bytes(ranked), (codes, lengths)
