"""PDF certificates: a template compiled once, then rendered for every credential.

Everything that does not depend on the record is prepared in CompiledCertificate: the
compiled title/body templates, page geometry, colours and the logo (decoded, flattened onto
the background and re-encoded as a JPEG, which reportlab embeds without re-encoding). Per
record, only the text is laid out and the QR code computed and drawn as ONE path of
horizontal runs, not a rectangle per cell.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from reportlab import rl_config
from reportlab.graphics import renderPDF
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, LETTER, landscape, portrait
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from svglib.svglib import svg2rlg

from credbatch.errors import FieldViolation
from credbatch.templating import qr
from credbatch.templating.sandbox import CompiledTemplate, Limits, TemplateProblem

CERTIFICATE_OVERFLOW = "CERTIFICATE_OVERFLOW"

# reportlab wraps every stream (page content, images) in ASCII85 by default, a pure-Python
# encoder that took a large share of a page's time; PDFs are binary files anyway.
# Process-wide, and only this module renders PDFs.
rl_config.useA85 = 0

MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_PIXELS = 4096
LOGO_MIME_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
PAGE_SIZES = {"A4": A4, "LETTER": LETTER}
ORIENTATIONS = ("LANDSCAPE", "PORTRAIT")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

TITLE_LIMITS = Limits(max_source_chars=2_000, max_output_chars=300, max_seconds=0.1)
BODY_LIMITS = Limits(max_source_chars=20_000, max_output_chars=6_000, max_seconds=0.1)

_MARGIN = 48.0
_QR_SIZE = 96.0
_TITLE_FONT = "Helvetica-Bold"
_BODY_FONT = "Helvetica"
_BODY_SIZE = 13.0
_LEADING = 18.0
_LOGO_HEIGHT = 56.0
# A tenant's SVG logo: drawn as vectors. A certificate template's own logo is PNG or JPEG.
SVG_MIME_TYPE = "image/svg+xml"


@dataclass(frozen=True, slots=True)
class CertificateLayout:
    """Visual options of a certificate (defaults: A4 landscape, navy on white)."""

    page_size: str = "A4"
    orientation: str = "LANDSCAPE"
    primary_color: str = "#1F3A93"
    text_color: str = "#222222"
    background_color: str = "#FFFFFF"
    logo: bytes | None = None
    logo_mime_type: str | None = None


def check_layout(layout: CertificateLayout, prefix: str) -> list[FieldViolation]:
    """Every problem of a layout, fields named under prefix (e.g. `….layout`)."""
    violations: list[FieldViolation] = []
    if layout.page_size not in PAGE_SIZES:
        violations.append(
            FieldViolation(f"{prefix}.page_size", "page_size is A4 or LETTER", "INVALID_PAGE_SIZE")
        )
    if layout.orientation not in ORIENTATIONS:
        violations.append(
            FieldViolation(
                f"{prefix}.orientation",
                "orientation is LANDSCAPE or PORTRAIT",
                "INVALID_ORIENTATION",
            )
        )
    for name in ("primary_color", "text_color", "background_color"):
        if _COLOR.fullmatch(getattr(layout, name)) is None:
            violations.append(
                FieldViolation(f"{prefix}.{name}", f"{name} is written #RRGGBB", "INVALID_COLOR")
            )
    violations.extend(_check_logo(layout, prefix))
    return violations


def _check_logo(layout: CertificateLayout, prefix: str) -> list[FieldViolation]:
    if layout.logo is None:
        if layout.logo_mime_type:
            return [
                FieldViolation(
                    f"{prefix}.logo", "logo_mime_type is set but the logo is empty", "REQUIRED"
                )
            ]
        return []
    field = f"{prefix}.logo"
    if len(layout.logo) > MAX_LOGO_BYTES:
        return [
            FieldViolation(
                field, f"the logo is larger than {MAX_LOGO_BYTES // 1024} KiB", "LOGO_TOO_LARGE"
            )
        ]
    expected = LOGO_MIME_TYPES.get(layout.logo_mime_type or "")
    if expected is None:
        return [
            FieldViolation(
                f"{prefix}.logo_mime_type",
                "logo_mime_type is image/png or image/jpeg",
                "INVALID_LOGO_TYPE",
            )
        ]
    try:
        with Image.open(io.BytesIO(layout.logo)) as image:
            found, size = image.format, image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return [FieldViolation(field, "the logo is not a readable PNG or JPEG", "INVALID_LOGO")]
    if found != expected:
        return [
            FieldViolation(
                field, f"the logo is {found}, not {layout.logo_mime_type}", "INVALID_LOGO_TYPE"
            )
        ]
    if max(size) > MAX_LOGO_PIXELS:
        return [
            FieldViolation(
                field, f"the logo is larger than {MAX_LOGO_PIXELS} pixels", "LOGO_TOO_LARGE"
            )
        ]
    return []


def _vector_logo(svg: bytes, max_width: float) -> Drawing:
    """An SVG logo (a tenant's, reduced to a safe subset of SVG when it was stored) as a vector
    drawing fitted into the logo's height and ``max_width``: the PDF draws it as paths,
    nothing is rasterised."""
    drawing = svg2rlg(io.BytesIO(svg))
    if drawing is None or drawing.width <= 0 or drawing.height <= 0:
        raise TemplateProblem("INVALID_LOGO", "the tenant's SVG logo cannot be drawn")
    scale = min(_LOGO_HEIGHT / drawing.height, max_width / drawing.width)
    drawing.scale(scale, scale)
    drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
    return drawing


def _flatten_logo(logo: bytes, background: str) -> tuple[bytes, float]:
    """The logo as a JPEG on the page's background (alpha flattened) and its aspect ratio."""
    with Image.open(io.BytesIO(logo)) as image:
        image.load()
        rgba = image.convert("RGBA")
    rgba.thumbnail((600, 600))
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, "JPEG", quality=90)
    return out.getvalue(), flat.width / flat.height


def qr_runs(data: str) -> tuple[int, list[tuple[int, int, int]]]:
    """The QR code of data as (modules per side, dark runs (row, first column, length))."""
    matrix = qr.matrix(data)
    runs: list[tuple[int, int, int]] = []
    for row_index, row in enumerate(matrix):
        start = -1
        for column, dark in enumerate(row):
            if dark and start < 0:
                start = column
            elif not dark and start >= 0:
                runs.append((row_index, start, column - start))
                start = -1
        if start >= 0:
            runs.append((row_index, start, len(row) - start))
    return len(matrix), runs


class CompiledCertificate:
    """A certificate template prepared once; render() makes one PDF per credential."""

    def __init__(self, title: str, body: str, layout: CertificateLayout | None = None) -> None:
        self.layout = layout or CertificateLayout()
        self.title = CompiledTemplate(title, limits=TITLE_LIMITS)
        self.body = CompiledTemplate(body, limits=BODY_LIMITS)
        self.placeholders = self.title.placeholders | self.body.placeholders
        size = PAGE_SIZES.get(self.layout.page_size, A4)
        orient = portrait if self.layout.orientation == "PORTRAIT" else landscape
        self.width, self.height = orient(size)
        self._primary: Color = HexColor(self.layout.primary_color)
        self._text: Color = HexColor(self.layout.text_color)
        self._background: Color = HexColor(self.layout.background_color)
        self._logo: bytes | None = None
        self._vector_logo: Drawing | None = None
        self._logo_width = 0.0
        if self.layout.logo is not None and self.layout.logo_mime_type == SVG_MIME_TYPE:
            self._vector_logo = _vector_logo(self.layout.logo, self.width / 2)
            self._logo_width = self._vector_logo.width
        elif self.layout.logo is not None:
            self._logo, aspect = _flatten_logo(self.layout.logo, self.layout.background_color)
            self._logo_width = min(_LOGO_HEIGHT * aspect, self.width / 2)
        self._text_width = self.width - 2 * _MARGIN - 24

    def render(self, values: Mapping[str, str], cred_url: str) -> bytes:
        """The PDF for one credential; raises TemplateProblem on a template failure or when
        the text does not fit on the page (never silently cut)."""
        title = " ".join(self.title.render(values).split())
        paragraphs = _paragraphs(self.body.render(values))
        out = io.BytesIO()
        canvas = Canvas(out, pagesize=(self.width, self.height), pageCompression=1, invariant=1)
        canvas.setTitle(title)
        self._draw_frame(canvas)
        top = self.height - _MARGIN - 24
        if self._logo is not None:
            top -= _LOGO_HEIGHT
            canvas.drawImage(
                ImageReader(io.BytesIO(self._logo)),
                (self.width - self._logo_width) / 2,
                top,
                self._logo_width,
                _LOGO_HEIGHT,
            )
            top -= 16
        elif self._vector_logo is not None:
            top -= _LOGO_HEIGHT
            renderPDF.draw(self._vector_logo, canvas, (self.width - self._logo_width) / 2, top)
            top -= 16
        top = self._draw_title(canvas, title, top)
        bottom = _MARGIN + _QR_SIZE + 24
        self._draw_body(canvas, paragraphs, top - 12, bottom)
        self._draw_qr(canvas, cred_url)
        canvas.showPage()
        canvas.save()
        return out.getvalue()

    def _draw_frame(self, canvas: Canvas) -> None:
        canvas.setFillColor(self._background)
        canvas.rect(0, 0, self.width, self.height, stroke=0, fill=1)
        canvas.setStrokeColor(self._primary)
        canvas.setLineWidth(3)
        inset = _MARGIN / 2
        canvas.rect(inset, inset, self.width - 2 * inset, self.height - 2 * inset, stroke=1, fill=0)

    def _draw_title(self, canvas: Canvas, title: str, top: float) -> float:
        size = 30.0
        while size > 16 and stringWidth(title, _TITLE_FONT, size) > self._text_width:
            size -= 2
        lines = simpleSplit(title, _TITLE_FONT, size, self._text_width)
        canvas.setFillColor(self._primary)
        canvas.setFont(_TITLE_FONT, size)
        for line in lines:
            top -= size * 1.2
            canvas.drawCentredString(self.width / 2, top, line)
        return top

    def _draw_body(
        self, canvas: Canvas, paragraphs: Sequence[Sequence[str]], top: float, bottom: float
    ) -> None:
        canvas.setFillColor(self._text)
        canvas.setFont(_BODY_FONT, _BODY_SIZE)
        y = top
        for paragraph in paragraphs:
            y -= _LEADING / 2
            for text_line in paragraph:
                for line in simpleSplit(text_line, _BODY_FONT, _BODY_SIZE, self._text_width):
                    y -= _LEADING
                    if y < bottom:
                        raise TemplateProblem(
                            CERTIFICATE_OVERFLOW,
                            "the certificate text does not fit on the page; shorten the body",
                        )
                    canvas.drawCentredString(self.width / 2, y, line)

    def _draw_qr(self, canvas: Canvas, cred_url: str) -> None:
        modules, runs = qr_runs(cred_url)
        cell = _QR_SIZE / modules
        left = self.width - _MARGIN - _QR_SIZE
        top = _MARGIN + _QR_SIZE
        # White quiet zone first: scanners need it whatever the background colour.
        quiet = 4 * cell
        canvas.setFillColor(Color(1, 1, 1))
        canvas.rect(
            left - quiet,
            top - _QR_SIZE - quiet,
            _QR_SIZE + 2 * quiet,
            _QR_SIZE + 2 * quiet,
            stroke=0,
            fill=1,
        )
        canvas.setFillColor(Color(0, 0, 0))
        # One path in module units: a transform puts module (column, row) at its place on
        # the page (rows downwards), so each run is written as small integers. reportlab's
        # path API formats every float in Python, which cost more than the rest of the page.
        canvas.saveState()
        canvas.transform(cell, 0, 0, -cell, left, top)
        canvas.addLiteral(
            "".join(f"{column} {row} {length} 1 re\n" for row, column, length in runs) + "f"
        )
        canvas.restoreState()
        canvas.setFillColor(self._text)
        canvas.setFont(_BODY_FONT, 8)
        canvas.drawString(_MARGIN, _MARGIN - 6, f"Verify: {cred_url}")


def _paragraphs(text: str) -> list[list[str]]:
    """Blank lines separate paragraphs; single newlines are kept as line breaks."""
    blocks = re.split(r"\n[ \t]*\n", text.strip())
    return [[line.strip() for line in block.splitlines()] for block in blocks if block.strip()]
