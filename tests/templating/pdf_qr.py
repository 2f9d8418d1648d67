"""Read the QR code back out of a certificate PDF, from the PDF's own drawing operators.

No PDF rasteriser (poppler, mupdf) is installed here and reportlab cannot rasterise, so this
paints the page's filled rectangles (`re` … `f`, with their fill colours) and one-bit inline
images (`BI` … `EI`), under their `cm` transforms and `q`/`Q` state, onto an image and lets
zxing-cpp decode it. It reads what is really in the
document: a QR path drawn wrongly, or not at all, does not decode.
"""

from __future__ import annotations

import io
from typing import Any

import pypdf
import zxingcpp
from PIL import Image, ImageDraw

Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: Matrix = (1, 0, 0, 1, 0, 0)


def _multiply(m: Matrix, n: Matrix) -> Matrix:
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def _apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


def rasterise(pdf: bytes, scale: float = 4.0) -> Image.Image:
    """The filled rectangles of page 1 of pdf, painted at scale pixels per point."""
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    image = Image.new("L", (round(width * scale), round(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    ctm, fill = _IDENTITY, 0
    stack: list[tuple[Matrix, int]] = []
    rects: list[tuple[float, float, float, float]] = []
    contents = page.get_contents()
    assert contents is not None
    for operands, operator in pypdf.generic.ContentStream(contents, page.pdf).operations:
        op = operator.decode("latin-1")
        if op == "q":
            stack.append((ctm, fill))
        elif op == "Q":
            ctm, fill = stack.pop()
        elif op == "cm":
            ctm = _multiply(tuple(float(v) for v in operands), ctm)  # type: ignore[arg-type]
        elif op == "rg":
            r, g, b = (float(v) for v in operands)
            fill = round(255 * (0.299 * r + 0.587 * g + 0.114 * b))
        elif op == "g":
            fill = round(255 * float(operands[0]))
        elif op == "re":
            x, y, w, h = (float(v) for v in operands)
            x0, y0 = _apply(ctm, x, y)
            x1, y1 = _apply(ctm, x + w, y + h)
            rects.append((x0, y0, x1, y1))
        elif op in ("f", "f*", "F", "B", "B*"):
            for x0, y0, x1, y1 in rects:
                box = sorted((x0 * scale, x1 * scale)), sorted((y0 * scale, y1 * scale))
                (left, right), (low, high) = box
                draw.rectangle(
                    (left, height * scale - high, right - 1, height * scale - low - 1), fill=fill
                )
            rects = []
        elif op in ("n", "S", "s"):
            rects = []
        elif op == "INLINE IMAGE":
            _paint_image(draw, operands, ctm, scale, height)
    return image


def _paint_image(
    draw: ImageDraw.ImageDraw, image: dict[str, Any], ctm: Matrix, scale: float, page: float
) -> None:
    """A one-bit grey inline image drawn in the unit square under ``ctm``, pixel by pixel."""
    settings, data = image["settings"], image["data"]
    assert settings.get("/CS") in ("/G", "/DeviceGray") and int(settings["/BPC"]) == 1
    if settings.get("/F") in ("/AHx", "/ASCIIHexDecode"):
        data = bytes.fromhex(data.decode("ascii").split(">")[0])
    width, height = int(settings["/W"]), int(settings["/H"])
    row_bytes = -(-width // 8)
    for row in range(height):
        for col in range(width):
            bit = data[row * row_bytes + col // 8] >> (7 - col % 8) & 1
            x0, y0 = _apply(ctm, col / width, 1 - (row + 1) / height)
            x1, y1 = _apply(ctm, (col + 1) / width, 1 - row / height)
            (left, right), (low, high) = (
                sorted((x0 * scale, x1 * scale)),
                sorted((y0 * scale, y1 * scale)),
            )
            box = (left, page * scale - high, right - 1, page * scale - low - 1)
            draw.rectangle(box, fill=255 * bit)


def decode_qr(pdf: bytes) -> list[str]:
    """The texts of every QR code found on page 1."""
    return [
        result.text
        for result in zxingcpp.read_barcodes(rasterise(pdf))
        if result.format == zxingcpp.BarcodeFormat.QRCode
    ]
