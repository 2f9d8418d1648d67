"""Profile checks that need no service: contrast arithmetic and locale tags."""

from __future__ import annotations

import pytest

from credbatch.locales import normalise_locale
from credbatch.tenants.validation import contrast, text_color


def test_contrast_matches_wcag_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#1a4480", "#ffffff") > 4.5


def test_text_colour_is_the_more_readable_of_black_and_white() -> None:
    assert text_color("#1a4480") == "#ffffff"
    assert text_color("#ffd700") == "#000000"


@pytest.mark.parametrize(
    ("tag", "canonical"),
    [("en", "en"), ("EN-gb", "en-GB"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"),
     ("de-CH-1996", "de-CH-1996"), ("en_US", None), ("english", None), ("e", None), ("", None)],
)  # fmt: skip
def test_bcp47_tags(tag: str, canonical: str | None) -> None:
    assert normalise_locale(tag) == canonical
