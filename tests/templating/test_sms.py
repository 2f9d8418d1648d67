from __future__ import annotations

import pytest

from credbatch.templating.sms import sms_info


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count double
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 158 + "€", "GSM-7", 160, 1),
        ("a" * 159 + "€", "GSM-7", 161, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # an escape pair is never split
        ("é" * 160, "GSM-7", 160, 1),
        ("ł" * 70, "UCS-2", 70, 1),
        ("ł" * 71, "UCS-2", 71, 2),
        ("ł" * 134, "UCS-2", 134, 2),
        ("😀" * 35, "UCS-2", 70, 1),  # surrogate pairs count two units
        ("ł" * 69 + "😀", "UCS-2", 71, 2),
        ("ł" * 66 + "😀" + "ł" * 66, "UCS-2", 134, 3),  # a surrogate pair is never split
    ],
)
def test_encoding_length_and_segments(text: str, encoding: str, length: int, segments: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.length, info.segments) == (encoding, length, segments)
