"""A certificate template without a logo of its own shows the tenant's logo: a PNG as an image,
an SVG as vector paths."""

from __future__ import annotations

import io
import uuid

from pypdf import PdfReader

from credbatch.catalog.model import CertificateTemplate
from credbatch.templating.certificate import CertificateLayout
from credbatch.tenants.logo import accept_logo
from tests.tenants.images import PNG_LOGO, SVG_CLEAN
from workers.issuance.certificates import compile_certificate


def _images(pdf: bytes) -> int:
    """Image objects on the page: the logo's (the QR code is an inline image of the content)."""
    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    return sum(1 for image in images if not image.name.startswith("~"))


def _template(layout: CertificateLayout) -> CertificateTemplate:
    return CertificateTemplate(uuid.uuid4(), "Plain", "{{ issuer_name }}", "For {{ name }}", layout)


def test_the_tenants_png_fills_the_logo_slot_and_the_templates_own_wins() -> None:
    values = {"issuer_name": "Example University", "name": "Ann"}
    bare = compile_certificate(_template(CertificateLayout()))
    assert _images(bare.render(values, "https://issuer.example/c/1")) == 0
    branded = compile_certificate(_template(CertificateLayout()), accept_logo(PNG_LOGO))
    pdf = branded.render(values, "https://issuer.example/c/1")
    assert _images(pdf) == 1
    assert "Example University" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    own = CertificateLayout(logo=PNG_LOGO, logo_mime_type="image/png")
    kept = compile_certificate(_template(own), accept_logo(SVG_CLEAN))
    assert kept.layout.logo == PNG_LOGO


def test_the_tenants_svg_is_drawn_as_paths() -> None:
    values = {"issuer_name": "Example University", "name": "Ann"}
    bare = compile_certificate(_template(CertificateLayout())).render(values, "https://x/c/1")
    svg_only = compile_certificate(_template(CertificateLayout()), accept_logo(SVG_CLEAN))
    pdf = svg_only.render(values, "https://issuer.example/c/1")
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert _images(pdf) == 0
    contents = page.get_contents()
    assert contents is not None
    drawn = contents.get_data()
    # The 120x40 drawing scaled to the logo's 56 points of height, and its text drawn in it.
    assert b"1.4 0 0 1.4 0 0 cm" in drawn and b"(Example) Tj" in drawn
    assert b"(Example) Tj" not in compile_certificate(_template(CertificateLayout())).render(
        values, "https://issuer.example/c/1"
    )
    assert len(pdf) > len(bare)
