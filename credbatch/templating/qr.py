"""The QR code of a certificate's link, with the data codewords computed here.

``qrcode`` computes a code's codewords bit by bit in Python (a method call per bit) and its
error correction by dividing polynomial objects, twice over when it fits the version: about
two thirds of a certificate's render. Here the version is chosen from the same table, the
bits are packed as one integer and the Reed-Solomon remainder is a table-driven loop; the
codewords are exactly ``qrcode.util.create_data``'s (``tests/templating/test_qr.py`` compares
them, and whole matrices, for many links), so ``qrcode`` only places them.

Only data that ``qrcode`` encodes as one 8-bit-byte segment (links always are: they hold
lower-case letters) takes this path; anything else is left to ``qrcode`` whole.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import cache

import qrcode
from qrcode import base, util

_ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
# Any mask is valid; a fixed one skips qrcode's evaluation of all eight.
_MASK = 2


@cache
def _generator_logs(ec_count: int) -> tuple[int, ...]:
    """Logs of the Reed-Solomon generator's coefficients after the leading 1."""
    poly = [1]
    for i in range(ec_count):  # times (x - a^i), as qrcode builds it
        root = base.gexp(i)
        product = [0] * (len(poly) + 1)
        for j, coefficient in enumerate(poly):
            product[j] ^= coefficient
            if coefficient:
                product[j + 1] ^= base.gexp(base.glog(coefficient) + base.glog(root))
        poly = product
    return tuple(base.glog(c) for c in poly[1:])


def _remainder(data: list[int], ec_count: int) -> list[int]:
    """The error correction codewords of one block (its data times x^n, mod the generator)."""
    logs = _generator_logs(ec_count)
    exp, log = base.EXP_TABLE, base.LOG_TABLE
    remainder = [0] * ec_count
    for value in data:
        factor = value ^ remainder[0]
        del remainder[0]
        remainder.append(0)
        if factor:
            shift = log[factor]
            for i, g in enumerate(logs):
                remainder[i] ^= exp[(g + shift) % 255]
    return remainder


def codewords(data: bytes, version: int) -> list[int]:
    """``qrcode.util.create_data`` for one 8-bit-byte segment at ``version`` (ECC level M)."""
    blocks = base.rs_blocks(version, _ERROR_CORRECTION)
    capacity = sum(block.data_count for block in blocks)
    count_bits = util.length_in_bits(util.MODE_8BIT_BYTE, version)
    bits = 4 + count_bits + 8 * len(data)
    if bits > capacity * 8:
        raise ValueError("the data does not fit the version")
    value = (util.MODE_8BIT_BYTE << count_bits | len(data)) << 8 * len(data)
    value |= int.from_bytes(data, "big")
    # Up to four 0 bits end the data, then 0 bits up to the byte boundary.
    end = min(capacity * 8 - bits, 4)
    padded = -(-(bits + end) // 8)
    stream = list((value << (padded * 8 - bits)).to_bytes(padded, "big"))
    stream += [util.PAD0 if i % 2 == 0 else util.PAD1 for i in range(capacity - padded)]
    data_blocks: list[list[int]] = []
    ec_blocks: list[list[int]] = []
    offset = 0
    for block in blocks:
        chunk = stream[offset : offset + block.data_count]
        offset += block.data_count
        data_blocks.append(chunk)
        ec_blocks.append(_remainder(chunk, block.total_count - block.data_count))
    out: list[int] = []
    for group in (data_blocks, ec_blocks):
        for i in range(max(len(b) for b in group)):
            out.extend(b[i] for b in group if i < len(b))
    return out


def matrix(data: str) -> list[list[bool]]:
    """The QR code of ``data`` (level M, no border) as rows of dark (True) modules."""
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION, border=0, mask_pattern=_MASK)
    code.add_data(data, optimize=0)
    segments = code.data_list
    if len(segments) != 1 or segments[0].mode != util.MODE_8BIT_BYTE:
        code.make(fit=True)
        return code.get_matrix()  # type: ignore[no-any-return]
    raw = segments[0].data
    # qrcode's best fit: the smallest version whose capacity holds the bits; the count field
    # is 8 bits up to version 9 and 16 from version 10, so fit both ways.
    limits = util.BIT_LIMIT_TABLE[_ERROR_CORRECTION]
    version = bisect_left(limits, 4 + 8 + 8 * len(raw), 1)
    if version >= 10:
        version = bisect_left(limits, 4 + 16 + 8 * len(raw), version)
    if version > 40:
        raise qrcode.exceptions.DataOverflowError()
    code.version = version
    code.data_cache = codewords(raw, version)
    code.makeImpl(False, _MASK)
    return code.get_matrix()  # type: ignore[no-any-return]
