"""Logos: PNG checked, SVG kept only as a static drawing that refers to nothing outside."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from credbatch.tenants.logo import MAX_LOGO_BYTES, LogoRefused, accept_logo
from credbatch.tenants.profile import PNG, SVG
from tests.tenants.images import PNG_LOGO, SVG_CLEAN

_OPEN = b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'


def test_a_png_is_kept_as_is() -> None:
    logo = accept_logo(PNG_LOGO)
    assert logo.media_type == PNG and logo.content == PNG_LOGO


def test_a_clean_svg_is_reserialised_without_comments() -> None:
    logo = accept_logo(SVG_CLEAN)
    assert logo.media_type == SVG
    assert b"<!--" not in logo.content and b"<?xml" not in logo.content
    assert logo.content.startswith(b"<svg") and b"url(#g)" in logo.content
    # What is stored passes the same checks again, unchanged.
    assert accept_logo(logo.content).content == logo.content


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<script>alert(1)</script>", "<script>"),
        (b'<rect width="1" height="1" onload="alert(1)"/>', "onload"),
        (b'<rect width="1" onclick="alert(1)"/>', "onclick"),
        (b"<foreignObject><div>x</div></foreignObject>", "<foreignObject>"),
        (b'<image href="https://tracker.example/p.png"/>', "<image>"),
        (b'<use href="https://evil.example/s.svg#a"/>', "href"),
        (b'<use xlink:href="data:image/svg+xml;base64,AAAA"/>', "href"),
        (b'<a href="javascript:alert(1)"><rect/></a>', "<a>"),
        (b'<rect fill="url(https://evil.example/x#p)"/>', "url()"),
        (b'<rect style="fill:url(https://evil.example/)"/>', "'style'"),
        (b"<style>rect{fill:url(https://evil.example/)}</style>", "<style>"),
        (b'<set attributeName="href" to="javascript:alert(1)"/>', "<set>"),
        (b'<animate attributeName="x"/>', "<animate>"),
        (b'<html:p xmlns:html="http://www.w3.org/1999/xhtml">x</html:p>', "<p>"),
    ],
)
def test_anything_but_a_static_drawing_is_refused(body: bytes, says: str) -> None:
    with pytest.raises(LogoRefused, match=None) as refused:
        accept_logo(_OPEN + body + b"</svg>")
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "y">]>' + _OPEN + b"&x;</svg>", "DTD"),
        (b'<!DOCTYPE svg SYSTEM "file:///etc/passwd">' + _OPEN + b"</svg>", "DTD"),
        (_OPEN + b"<rect>", "well-formed"),
        (b'<svg xmlns="http://example.org/not-svg"/>', "SVG namespace"),
        (b"<svg/>", "SVG namespace"),
        (b"GIF89a\x01\x00", "PNG or an SVG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "valid PNG"),
        (b"", "empty"),
    ],
)
def test_malformed_or_dangerous_documents_are_refused(content: bytes, says: str) -> None:
    with pytest.raises(LogoRefused) as refused:
        accept_logo(content)
    assert says in str(refused.value)


def test_size_limits() -> None:
    with pytest.raises(LogoRefused, match="at most"):
        accept_logo(SVG_CLEAN + b" " * MAX_LOGO_BYTES)
    out = io.BytesIO()
    Image.new("1", (5000, 1)).save(out, format="PNG")
    with pytest.raises(LogoRefused, match="4096"):
        accept_logo(out.getvalue())
