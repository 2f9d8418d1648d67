"""The QR code of a certificate's link, with the data codewords computed here.

``qrcode`` computes a code's codewords bit by bit in Python (a method call per bit) and its
error correction by dividing polynomial objects, twice over when it fits the version: about
two thirds of a certificate's render, and its placement of the codewords (a mask function
call and a matrix look-up per module) most of the rest. Here the version is chosen from the
same table, the bits are packed as one integer and the Reed-Solomon remainder is a
table-driven loop; the codewords are exactly ``qrcode.util.create_data``'s. The function
patterns of a version are ``qrcode``'s own, drawn once per version, as is the order in which
its ``map_data`` visits the free modules; a code is then its bits masked by one integer XOR
and put in matrix order by one ``itemgetter``, no Python step per module
(``tests/templating/test_qr.py`` compares codewords and whole matrices with ``qrcode``'s for
many links).

Only data that ``qrcode`` encodes as one 8-bit-byte segment (links always are: they hold
lower-case letters) takes this path; anything else is left to ``qrcode`` whole.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import chain, zip_longest
from operator import itemgetter

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


@cache
def _products(ec_count: int) -> tuple[int, ...]:
    """For each factor, the generator's coefficients after the leading 1 times that factor,
    packed as one integer of ``ec_count`` bytes (the first coefficient in the highest)."""
    logs = _generator_logs(ec_count)
    exp = base.EXP_TABLE
    products = [0]
    for factor in range(1, 256):
        shift = base.glog(factor)
        products.append(int.from_bytes(bytes(exp[(g + shift) % 255] for g in logs), "big"))
    return tuple(products)


def _remainder(data: list[int], ec_count: int) -> list[int]:
    """The error correction codewords of one block (its data times x^n, mod the generator).

    The division's register is one integer of ``ec_count`` bytes: each data byte shifts it
    one byte and adds (XOR) a row of the product table, three integer operations a byte
    instead of a loop over the generator.
    """
    products = _products(ec_count)
    top = 8 * (ec_count - 1)
    keep = (1 << top) - 1
    remainder = 0
    for value in data:
        remainder = (remainder & keep) << 8 ^ products[value ^ remainder >> top]
    return list(remainder.to_bytes(ec_count, "big"))


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
    # Interleaved: the first codeword of every block, then the second, ...; a shorter block
    # drops out when it ends (zip_longest's None, never a codeword).
    out: list[int] = []
    for group in (data_blocks, ec_blocks):
        out += [c for c in chain.from_iterable(zip_longest(*group)) if c is not None]
    return out


@dataclass(frozen=True, slots=True)
class _Version:
    """What every code of one version shares: a ``place`` that puts the modules in matrix
    order (rows one after the other) from the data modules' bits in ``map_data``'s order
    followed by the function patterns' and format information's modules, those and the mask
    as one integer over the data modules (first module in the highest bit)."""

    side: int
    data_modules: int
    function_modules: str
    place: Callable[[str], tuple[str, ...]]
    mask: int


@cache
def _version(version: int) -> _Version:
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION, border=0, mask_pattern=_MASK)
    code.version = version
    n = code.modules_count = version * 4 + 17
    code.modules = [[None] * n for _ in range(n)]
    code.setup_position_probe_pattern(0, 0)
    code.setup_position_probe_pattern(n - 7, 0)
    code.setup_position_probe_pattern(0, n - 7)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(False, _MASK)
    if version >= 7:
        code.setup_type_number(False)
    blank = code.modules
    # map_data's walk: column pairs from the right (column 6, the timing, skipped), upwards
    # then downwards in turn, each pair right column first.
    walk: list[tuple[int, int]] = []
    upwards = True
    for right in range(n - 1, 0, -2):
        right -= right <= 6
        for row in range(n - 1, -1, -1) if upwards else range(n):
            walk.extend((row, col) for col in (right, right - 1) if blank[row][col] is None)
        upwards = not upwards
    source = {module: index for index, module in enumerate(walk)}
    functions: list[str] = []
    for row in range(n):
        for col in range(n):
            if (row, col) not in source:
                source[row, col] = len(walk) + len(functions)
                functions.append("1" if blank[row][col] else "0")
    mask_of = util.mask_func(_MASK)
    mask = int("".join("1" if mask_of(row, col) else "0" for row, col in walk), 2)
    place = itemgetter(*(source[row, col] for row in range(n) for col in range(n)))
    return _Version(n, len(walk), "".join(functions), place, mask)


def _placed(version: int, data: list[int]) -> list[str]:
    """``QRCode.makeImpl(False, mask)``'s matrix for the codewords ``data``, a character a
    module ("1" dark)."""
    layout = _version(version)
    count = layout.data_modules
    # Modules past the codewords (the remainder bits) are light before the mask.
    bits = int.from_bytes(bytes(data), "big") << (count - 8 * len(data)) ^ layout.mask
    modules = "".join(layout.place(format(bits, f"0{count}b") + layout.function_modules))
    n = layout.side
    return [modules[start : start + n] for start in range(0, n * n, n)]


def rows(data: str) -> list[str]:
    """The QR code of ``data`` (level M, no border) as rows of a character a module, "1"
    dark."""
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION, border=0, mask_pattern=_MASK)
    code.add_data(data, optimize=0)
    segments = code.data_list
    if len(segments) != 1 or segments[0].mode != util.MODE_8BIT_BYTE:
        code.make(fit=True)
        return ["".join("1" if dark else "0" for dark in row) for row in code.get_matrix()]
    raw = segments[0].data
    # qrcode's best fit: the smallest version whose capacity holds the bits; the count field
    # is 8 bits up to version 9 and 16 from version 10, so fit both ways.
    limits = util.BIT_LIMIT_TABLE[_ERROR_CORRECTION]
    version = bisect_left(limits, 4 + 8 + 8 * len(raw), 1)
    if version >= 10:
        version = bisect_left(limits, 4 + 16 + 8 * len(raw), version)
    if version > 40:
        raise qrcode.exceptions.DataOverflowError()
    return _placed(version, codewords(raw, version))


def matrix(data: str) -> list[list[bool]]:
    """The QR code of ``data`` (level M, no border) as rows of dark (True) modules."""
    return [[module == "1" for module in row] for row in rows(data)]
