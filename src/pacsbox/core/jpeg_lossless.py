"""A JPEG lossless encoder (ITU-T T.81 Annex H, process 14, first-order prediction): the transfer syntaxes
1.2.840.10008.1.2.4.57 and .70 that Orthanc's DCMTK writes and no codec of pydicom's plugins or Pillow does.

Grey or colour images (one scan per component) of 2 to 16 bits, predictor 1 (the sample on the left) or 6 (the
sample above plus half the left one's difference from the upper left; in both, the first row predicts from the
left, the first column from above, the first sample from half the range), one Huffman table
per scan built from the image's own statistics (code lengths at most 16, no all-ones code, T.81 Annex C), bits
packed with numpy and 0xFF bytes stuffed with 0x00 (T.81 F.1.2.3). What it writes any JPEG lossless decoder reads
back bit for bit (the tests decode it with DCMTK's dcmdjpeg and with the real Orthanc).
"""

from __future__ import annotations

import heapq
import struct

import numpy

#: Predictors by selection value (T.81 table H.1) that DCMTK uses: 1 for .70 (Ra), 6 for .57 (Rb + (Ra - Rc) / 2)
PREDICTORS = (1, 6)
_MAX_CATEGORY = 16


def encode_frame(frame: numpy.ndarray, precision: int, predictor: int = 1) -> bytes:
    """One frame (rows x columns, or rows x columns x components, of unsigned samples below 2**precision) as a
    JPEG lossless bitstream: one scan per component (T.81 allows non-interleaved scans), with ``predictor`` 1 or 6."""
    planes = frame[:, :, numpy.newaxis] if frame.ndim == 2 else frame
    if planes.ndim != 3 or not 2 <= precision <= 16 or planes.shape[2] > 4 or predictor not in PREDICTORS:
        raise ValueError("JPEG lossless encodes 1 to 4 components of 2 to 16 bits")
    rows, columns, count = planes.shape
    components = b"".join(bytes((number, 0x11, 0)) for number in range(1, count + 1))
    parts = [b"\xff\xd8", _segment(0xC3, struct.pack(">BHHB", precision, rows, columns, count) + components)]
    for number in range(1, count + 1):
        samples = planes[:, :, number - 1].astype(numpy.int64) & ((1 << precision) - 1)
        table, data = _scan(samples, precision, predictor)
        parts += [_segment(0xC4, b"\x00" + table), _segment(0xDA, bytes((1, number, 0, predictor, 0, 0))), data]
    parts.append(b"\xff\xd9")
    return b"".join(parts)


def _scan(samples: numpy.ndarray, precision: int, predictor: int) -> tuple[bytes, bytes]:
    """One component: its Huffman table (BITS and HUFFVAL) and its entropy-coded data."""
    predicted = numpy.empty_like(samples)
    predicted[:, 1:] = samples[:, :-1]  # Ra
    if predictor == 6:  # Rb + ((Ra - Rc) >> 1) below the first row, right of the first column
        predicted[1:, 1:] = samples[:-1, 1:] + ((samples[1:, :-1] - samples[:-1, :-1]) >> 1)
    predicted[1:, 0] = samples[:-1, 0]  # Rb at the start of each row but the first
    predicted[0, 0] = 1 << (precision - 1)
    difference = (samples - predicted) % 65536  # modulo 2**16 (T.81 H.1.2.1), read as a signed number
    difference = numpy.where(difference >= 32768, difference - 65536, difference).ravel()
    magnitude = numpy.abs(difference)
    category = numpy.zeros(magnitude.shape, dtype=numpy.int64)
    nonzero = magnitude > 0
    category[nonzero] = numpy.floor(numpy.log2(magnitude[nonzero])).astype(numpy.int64) + 1
    category = numpy.minimum(category, _MAX_CATEGORY)  # -32768 is category 16, with no additional bits
    extra = numpy.where(difference < 0, difference - 1, difference) & ((1 << category) - 1)
    extra = numpy.where(category == _MAX_CATEGORY, 0, extra)
    extra_length = numpy.where(category == _MAX_CATEGORY, 0, category)
    lengths, values = _huffman_table(numpy.bincount(category, minlength=_MAX_CATEGORY + 1))
    codes, code_lengths = _canonical_codes(lengths, values)
    words = (codes[category] << extra_length) | extra
    return bytes(lengths) + bytes(values), _pack(words, code_lengths[category] + extra_length)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _huffman_table(counts: numpy.ndarray) -> tuple[list[int], list[int]]:
    """``(BITS, HUFFVAL)``: how many codes of each length 1..16, and the categories in code order. A reserved
    symbol of count zero takes the longest code, so that no real code is all ones (T.81 K.2)."""
    symbols = [(int(count), symbol) for symbol, count in enumerate(counts) if count] or [(1, 0)]
    heap = [(count, index, [symbol]) for index, (count, symbol) in enumerate(symbols + [(0, _MAX_CATEGORY + 1)])]
    heapq.heapify(heap)
    depth = dict.fromkeys([symbol for _, symbol in symbols] + [_MAX_CATEGORY + 1], 0)
    order = len(heap)
    while len(heap) > 1:
        first, second = heapq.heappop(heap), heapq.heappop(heap)
        for symbol in first[2] + second[2]:
            depth[symbol] += 1
        heapq.heappush(heap, (first[0] + second[0], order, first[2] + second[2]))
        order += 1
    if max(depth.values()) > 16:  # a skewed histogram: a flat table of 5-bit codes always fits
        depth = dict.fromkeys(depth, 5)
    ranked = sorted(depth, key=lambda symbol: (depth[symbol], symbol))
    ranked.remove(_MAX_CATEGORY + 1)
    bits = [0] * 16
    for symbol in ranked:
        bits[depth[symbol] - 1] += 1
    return bits, ranked


def _canonical_codes(bits: list[int], values: list[int],
                     symbols: int = _MAX_CATEGORY + 1) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Each symbol's code and code length, as T.81 C.2 derives them from BITS and HUFFVAL (``symbols``: how many
    symbols the table may hold: the categories here, 256 run/size pairs for the DCT encoder)."""
    codes = numpy.zeros(symbols, dtype=numpy.int64)
    lengths = numpy.zeros(symbols, dtype=numpy.int64)
    code, position = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[position]], lengths[values[position]] = code, length
            code += 1
            position += 1
        code <<= 1
    return codes, lengths


def _pack(words: numpy.ndarray, lengths: numpy.ndarray) -> bytes:
    """Words of ``lengths`` bits each (at most 32), most significant first, padded with ones, 0xFF stuffed."""
    shifts = numpy.arange(31, -1, -1, dtype=numpy.int64)
    bits = ((words[:, numpy.newaxis] >> shifts) & 1).astype(numpy.uint8)
    keep = shifts[numpy.newaxis, :] < lengths[:, numpy.newaxis]
    stream = bits[keep]
    stream = numpy.concatenate([stream, numpy.ones((-len(stream)) % 8, dtype=numpy.uint8)])
    packed = numpy.packbits(stream)
    stuffed = numpy.insert(packed, numpy.flatnonzero(packed == 0xFF) + 1, 0)
    return stuffed.tobytes()
