"""Certificates written by credbatch's one-page writer, and by reportlab when a logo needs it."""

from __future__ import annotations

import io
from typing import Any

import pypdf
import pytest
from reportlab.lib import rl_accel

from credbatch.templating.certificate import CertificateLayout, CompiledCertificate
from credbatch.templating.pdf_page import FontNames, OnePageWriter, text_ops
from tests.templating.pdf_qr import decode_qr
from tests.tenants.images import PNG_LOGO, SVG_CLEAN

URL = "https://issuer.example/c/Yk3s9Q2x"
# svglib finds DejaVu Sans on the system (fc-match) and embeds it as a TrueType font.
SVG_TRUETYPE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="20"><text x="1" y="15"'
    b' font-family="DejaVu Sans" font-size="12">Acme</text></svg>'
)


def _check_cross_references(pdf: bytes) -> None:
    """Every object the xref table lists starts at its offset; startxref points at the table.
    (pypdf repairs a wrong offset silently, even when strict.)"""
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    assert pdf[start:].startswith(b"xref\n0 ")
    lines = pdf[start:].split(b"\n")
    count = int(lines[1].split()[1])
    for number, line in enumerate(lines[3 : 2 + count], start=1):
        offset = int(line.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number), number
    assert lines[2 + count] == b"trailer"


def _certificate(logo: bytes | None = None, mime: str | None = None) -> CompiledCertificate:
    layout = CertificateLayout(logo=logo, logo_mime_type=mime)
    return CompiledCertificate("Diploma of {{ course }}", "Awarded to {{ name }}", layout)


@pytest.mark.parametrize(
    ("logo", "mime", "producer"),
    [
        (None, None, "credbatch"),
        (PNG_LOGO, "image/png", "credbatch"),
        (SVG_CLEAN, "image/svg+xml", "credbatch"),
        (SVG_TRUETYPE, "image/svg+xml", "ReportLab PDF Library"),
    ],
)
def test_every_logo_kind_gives_a_strictly_valid_file_with_text_and_qr(
    logo: bytes | None, mime: str | None, producer: str
) -> None:
    values = {"course": "Welding", "name": "Zoë Müller 李"}
    pdf = _certificate(logo, mime).render(values, URL)
    if producer == "credbatch":
        _check_cross_references(pdf)
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    text = reader.pages[0].extract_text()
    assert "Diploma of Welding" in text and "Zoë Müller" in text and URL in text
    assert decode_qr(pdf) == [URL]
    assert reader.metadata is not None and reader.metadata.title == "Diploma of Welding"
    assert (reader.metadata.producer or "").startswith(producer)


def test_a_title_outside_ascii_is_kept_in_the_document_information() -> None:
    pdf = _certificate().render({"course": "Ğaz — 溶接", "name": "x"}, URL)
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    assert reader.metadata is not None and reader.metadata.title == "Diploma of Ğaz — 溶接"


def test_text_a_font_cannot_encode_is_drawn_from_its_substitutes() -> None:
    fonts = FontNames()
    fonts.add_with_substitutes("Helvetica")
    ops = text_ops("a☃(b)", "Helvetica", 12, fonts.__getitem__)
    helvetica, dingbats = fonts["Helvetica"], fonts["ZapfDingbats"]
    assert ops == f"{helvetica} 12 Tf (a) Tj {dingbats} 12 Tf (n) Tj {helvetica} 12 Tf (\\(b\\)) Tj"


def test_a_font_the_page_does_not_hold_is_refused_once_the_writer_has_its_fonts() -> None:
    fonts = FontNames()
    fonts.add_with_substitutes("Helvetica")
    OnePageWriter(100, 100, fonts, {}, None)
    with pytest.raises(KeyError):
        text_ops("x", "Courier", 10, fonts.__getitem__)


def test_each_file_has_its_own_content_and_the_shared_objects_unchanged() -> None:
    fonts = FontNames()
    fonts.add_with_substitutes("Helvetica")
    writer = OnePageWriter(200, 100, fonts, {"gs1": {"ca": 0.5}}, None)
    first = writer.write("0 0 1 rg n 0 0 10 10 re f", "one")
    second = writer.write("1 0 0 rg n 0 0 20 20 re f", "two")
    assert first != second
    for pdf, title in ((first, "one"), (second, "two")):
        _check_cross_references(pdf)
        reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
        page = reader.pages[0]
        assert [float(v) for v in page.mediabox] == [0, 0, 200, 100]
        resources: Any = page["/Resources"]
        assert resources["/ExtGState"]["/gs1"]["/ca"] == 0.5
        assert reader.metadata is not None and reader.metadata.title == title


def test_reportlab_formats_with_its_c_accelerators() -> None:
    """rl_accel is a dependency for speed alone: were it not loaded, reportlab would fall back
    to its pure Python versions silently, a sixth of a certificate's render."""
    for name in ("fp_str", "escapePDF", "unicode2T1", "instanceStringWidthT1"):
        assert getattr(rl_accel, name).__module__ == "_rl_accel", name
