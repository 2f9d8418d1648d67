from __future__ import annotations

import io

import pypdf
import pytest
from PIL import Image

from credbatch.templating.certificate import (
    CertificateLayout,
    CompiledCertificate,
    check_layout,
)
from credbatch.templating.sandbox import TemplateProblem
from tests.templating.pdf_qr import decode_qr

VALUES = {"given_name": "Zoë", "family_name": "Müller", "course": "Advanced Welding"}
URL = "http://127.0.0.1:8000/c/Yk3s9Q2x"


def _png(size: tuple[int, int] = (120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (200, 20, 20, 120)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("orientation", ["LANDSCAPE", "PORTRAIT"])
@pytest.mark.parametrize("page_size", ["A4", "LETTER"])
def test_the_pdf_holds_the_values_and_a_qr_code_of_the_url(
    page_size: str, orientation: str
) -> None:
    layout = CertificateLayout(
        page_size=page_size,
        orientation=orientation,
        background_color="#FDF6E3",
        logo=_png(),
        logo_mime_type="image/png",
    )
    certificate = CompiledCertificate(
        "Certificate of {{ course }}",
        "This certifies that\n\n{{ given_name }} {{ family_name }}\n\ncompleted the course.",
        layout,
    )
    pdf = certificate.render(VALUES, URL)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for value in ("Advanced Welding", "Zoë Müller", URL):
        assert value in text
    assert decode_qr(pdf) == [URL]
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (width > height) == (orientation == "LANDSCAPE")


def test_each_render_encodes_its_own_url() -> None:
    certificate = CompiledCertificate("T", "B")
    assert decode_qr(certificate.render({}, URL + "a")) == [URL + "a"]
    assert decode_qr(certificate.render({}, URL + "b")) == [URL + "b"]


def test_a_title_laid_out_once_gives_the_same_pdf_as_a_fresh_template() -> None:
    title, body = "Certificate of {{ course }}", "Awarded to {{ given_name }}"
    kept = CompiledCertificate(title, body)
    # Short and long titles (one line, wrapped), each again after others were kept.
    courses = ["Welding", "Welding " * 12, "Welding", "Rope access", "Welding " * 12]
    for course in courses:
        values = {**VALUES, "course": course}
        assert kept.render(values, URL) == CompiledCertificate(title, body).render(values, URL)
        assert " ".join(course.split()) in pypdf.PdfReader(
            io.BytesIO(kept.render(values, URL))
        ).pages[0].extract_text().replace("\n", " ")


def test_text_that_does_not_fit_is_refused_not_cut() -> None:
    certificate = CompiledCertificate("T", "{% for i in range(60) %}line\n\n{% endfor %}")
    with pytest.raises(TemplateProblem) as caught:
        certificate.render({}, URL)
    assert caught.value.code == "CERTIFICATE_OVERFLOW"


def test_layout_rules() -> None:
    bad = CertificateLayout(
        page_size="A3",
        orientation="DIAGONAL",
        primary_color="red",
        logo=b"not an image",
        logo_mime_type="image/png",
    )
    reasons = {v.field: v.reason for v in check_layout(bad, "l")}
    assert reasons == {
        "l.page_size": "INVALID_PAGE_SIZE",
        "l.orientation": "INVALID_ORIENTATION",
        "l.primary_color": "INVALID_COLOR",
        "l.logo": "INVALID_LOGO",
    }
    wrong_type = CertificateLayout(logo=_png(), logo_mime_type="image/jpeg")
    assert [v.reason for v in check_layout(wrong_type, "l")] == ["INVALID_LOGO_TYPE"]
    too_big = CertificateLayout(logo=b"x" * (512 * 1024 + 1), logo_mime_type="image/png")
    assert [v.reason for v in check_layout(too_big, "l")] == ["LOGO_TOO_LARGE"]
    assert check_layout(CertificateLayout(logo=_png(), logo_mime_type="image/png"), "l") == []
