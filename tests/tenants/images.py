"""Small logo files for the tests."""

from __future__ import annotations

import io

from PIL import Image


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (26, 68, 128)).save(out, format="PNG")
    return out.getvalue()


PNG_1X1 = _png(1, 1)
PNG_LOGO = _png(120, 40)
SVG_CLEAN = (
    b'<?xml version="1.0"?>\n<!-- a comment -->\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    b'viewBox="0 0 120 40" width="120" height="40"><title>Example</title>'
    b'<defs><linearGradient id="g"><stop offset="0" stop-color="#1a4480"/></linearGradient>'
    b'</defs><rect width="120" height="40" fill="url(#g)"/>'
    b'<use xlink:href="#g"/><text x="4" y="28" font-size="20" fill="#fff">Example</text></svg>'
)
