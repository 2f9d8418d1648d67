"""The certificate's QR code: codewords computed here, placed by qrcode, equal to qrcode's own."""

from __future__ import annotations

import random
import string

import pytest
import qrcode
from qrcode import util

from credbatch.templating import qr


def _reference(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=2
    )
    code.add_data(data, optimize=0)
    code.make(fit=True)
    return code


def _links() -> list[str]:
    chance = random.Random(27)
    alphabet = string.ascii_letters + string.digits + "/-_.%~"
    # Every length up to 300 characters, then lengths reaching the largest versions (the
    # count field is 8 bits up to version 9 and 16 bits from version 10).
    lengths = [*range(0, 300), 320, 370, 500, 1000, 1500, 2000, 2300]
    return [
        "https://c.example/" + "".join(chance.choice(alphabet) for _ in range(n)) for n in lengths
    ]


def test_codewords_and_matrices_are_qrcodes_own() -> None:
    versions = set()
    for link in _links():
        code = _reference(link)
        versions.add(code.version)
        expected = util.create_data(code.version, code.error_correction, code.data_list)
        assert qr.codewords(code.data_list[0].data, code.version) == expected, len(link)
        assert qr.matrix(link) == code.get_matrix(), len(link)
    # Small and large versions were both compared, across the count field's change.
    assert min(versions) <= 3 and {9, 10} <= versions and max(versions) >= 38


@pytest.mark.parametrize("data", ["", "0123456789", "HELLO WORLD 42", "é ü ß"])
def test_other_data_is_left_to_qrcode(data: str) -> None:
    assert qr.matrix(data) == _reference(data).get_matrix()


def test_data_larger_than_the_largest_code_is_refused() -> None:
    with pytest.raises(qrcode.exceptions.DataOverflowError):
        qr.matrix("https://c.example/" + "a" * 2400)
    with pytest.raises(ValueError, match="does not fit"):
        qr.codewords(b"a" * 100, 1)
