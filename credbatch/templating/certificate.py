"""PDF certificates: a template compiled once, then rendered for every credential.

Everything that does not depend on the record is prepared in CompiledCertificate: the
compiled title/body templates, page geometry, colours, the logo (decoded, flattened onto the
background and re-encoded as a JPEG, embedded as it is; or an SVG's drawing operators) and
the file's fixed objects (``pdf_page.OnePageWriter``). Per record, only the text is laid out
and the QR code computed and drawn as a one-bit image, a bit a module.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from reportlab import rl_config
from reportlab.graphics import renderPDF
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, LETTER, landscape, portrait
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from svglib.svglib import svg2rlg

from credbatch.errors import FieldViolation
from credbatch.templating import qr
from credbatch.templating.pdf_page import FontNames, JpegImage, OnePageWriter, text_ops
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
# Titles laid out and kept per template: most batches give every certificate the same title.
_TITLES_KEPT = 64
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


def _flatten_logo(logo: bytes, background: str) -> JpegImage:
    """The logo as a JPEG on the page's background (alpha flattened)."""
    with Image.open(io.BytesIO(logo)) as image:
        image.load()
        rgba = image.convert("RGBA")
    rgba.thumbnail((600, 600))
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, "JPEG", quality=90)
    return JpegImage(out.getvalue(), flat.width, flat.height)


def qr_image(data: str) -> tuple[int, str]:
    """The QR code of data: its modules per side, and an inline image of it (``BI`` … ``EI``)
    to draw in the unit square.

    A bit a module (DeviceGray, 0 black), one bit row per module row, hex-encoded so no byte
    of it can end the image early. A path of the dark runs would be formatted in Python, a few
    hundred numbers per code; these are one integer per row.
    """
    rows = qr.rows(data)
    side = len(rows)
    row_bytes = -(-side // 8)
    pad = 8 * row_bytes - side
    light = (1 << side) - 1
    bits = b"".join(((int(row, 2) ^ light) << pad).to_bytes(row_bytes, "big") for row in rows)
    return side, f"BI /W {side} /H {side} /CS /G /BPC 1 /F /AHx ID\n{bits.hex()}>\nEI"


class CompiledCertificate:
    """A certificate template prepared once; render() makes one PDF per credential.

    The page is written as PDF operators here, the same for every record but its text and QR
    code, and the file by ``OnePageWriter`` (fixed objects written once). A vector logo is
    drawn once by reportlab into a scratch canvas and its operators kept; when it needs more
    than standard fonts and graphics states (text in a TrueType font found on the system), the
    file is written by reportlab instead, with the same operators around the logo.
    """

    def __init__(self, title: str, body: str, layout: CertificateLayout | None = None) -> None:
        self.layout = layout or CertificateLayout()
        self.title = CompiledTemplate(title, limits=TITLE_LIMITS)
        self.body = CompiledTemplate(body, limits=BODY_LIMITS)
        self.placeholders = self.title.placeholders | self.body.placeholders
        size = PAGE_SIZES.get(self.layout.page_size, A4)
        orient = portrait if self.layout.orientation == "PORTRAIT" else landscape
        self.width, self.height = orient(size)
        self._primary = _color_ops(HexColor(self.layout.primary_color))
        self._text = _color_ops(HexColor(self.layout.text_color))
        self._text_width = self.width - 2 * _MARGIN - 24
        inset = _MARGIN / 2
        frame = [
            _color_ops(HexColor(self.layout.background_color)),
            f"n 0 0 {fp_str(self.width)} {fp_str(self.height)} re f*",
            _color_ops(HexColor(self.layout.primary_color), "RG"),
            "3 w",
            f"n {fp_str(inset, inset, self.width - 2 * inset, self.height - 2 * inset)} re S",
        ]
        top = self.height - _MARGIN - 24
        fonts = FontNames()
        graphics_states: dict[str, dict[str, float]] = {}
        image: JpegImage | None = None
        self._vector_logo: tuple[Drawing, float, float] | None = None
        if self.layout.logo is not None and self.layout.logo_mime_type == SVG_MIME_TYPE:
            drawing = _vector_logo(self.layout.logo, self.width / 2)
            top -= _LOGO_HEIGHT
            at = ((self.width - drawing.width) / 2, top)
            captured = _capture(drawing, at)
            if captured is None:
                self._vector_logo = (drawing, *at)
            else:
                ops, names, graphics_states = captured
                fonts = FontNames(names)
                frame.extend(ops)
            top -= 16
        elif self.layout.logo is not None:
            image = _flatten_logo(self.layout.logo, self.layout.background_color)
            logo_width = min(_LOGO_HEIGHT * image.pixels_wide / image.pixels_high, self.width / 2)
            top -= _LOGO_HEIGHT
            left = (self.width - logo_width) / 2
            frame.append(f"q\n{fp_str(logo_width, 0, 0, _LOGO_HEIGHT, left, top)} cm\n/Im1 Do\nQ")
            top -= 16
        self._frame = "\n".join(frame)
        self._top = top
        for font_name in (_TITLE_FONT, _BODY_FONT):
            fonts.add_with_substitutes(font_name)
        self._fonts = fonts
        self._font_names: Callable[[str], str] = fonts.__getitem__
        self._titles: dict[str, tuple[list[str], float]] = {}
        self._writer = (
            None
            if self._vector_logo is not None
            else OnePageWriter(self.width, self.height, fonts, graphics_states, image)
        )

    def render(self, values: Mapping[str, str], cred_url: str) -> bytes:
        """The PDF for one credential; raises TemplateProblem on a template failure or when
        the text does not fit on the page (never silently cut)."""
        title = " ".join(self.title.render(values).split())
        paragraphs = _paragraphs(self.body.render(values))
        if self._writer is None:
            return self._render_with_reportlab(title, paragraphs, cred_url)
        return self._writer.write(
            self._frame + "\n" + self._page(title, paragraphs, cred_url, self._font_names),
            title,
        )

    def _render_with_reportlab(
        self, title: str, paragraphs: Sequence[Sequence[str]], cred_url: str
    ) -> bytes:
        assert self._vector_logo is not None
        out = io.BytesIO()
        canvas = Canvas(out, pagesize=(self.width, self.height), pageCompression=1, invariant=1)
        canvas.setTitle(title)
        canvas.addLiteral(self._frame)
        drawing, x, y = self._vector_logo
        renderPDF.draw(drawing, canvas, x, y)
        canvas.addLiteral(self._page(title, paragraphs, cred_url, canvas._doc.getInternalFontName))
        canvas.showPage()
        canvas.save()
        return out.getvalue()

    def _page(
        self,
        title: str,
        paragraphs: Sequence[Sequence[str]],
        cred_url: str,
        fonts: Callable[[str], str],
    ) -> str:
        """The operators of everything below the logo: title, body, QR code and link."""
        ops: list[str] = []
        top = self._title(ops, title, fonts)
        self._body(ops, paragraphs, top - 12, _MARGIN + _QR_SIZE + 24, fonts)
        self._qr(ops, cred_url, fonts)
        return "\n".join(ops)

    def _title(self, ops: list[str], title: str, fonts: Callable[[str], str]) -> float:
        """Adds the title's operators to ``ops``; returns the height below it. Kept per title
        where the fonts' names are this template's own (not a reportlab canvas's)."""
        own_fonts = fonts is self._font_names
        laid_out = self._titles.get(title) if own_fonts else None
        if laid_out is None:
            laid_out = self._lay_out_title(title, fonts)
            if own_fonts:
                if len(self._titles) >= _TITLES_KEPT:
                    self._titles.clear()
                self._titles[title] = laid_out
        ops.extend(laid_out[0])
        return laid_out[1]

    def _lay_out_title(self, title: str, fonts: Callable[[str], str]) -> tuple[list[str], float]:
        size = 30.0
        while size > 16 and stringWidth(title, _TITLE_FONT, size) > self._text_width:
            size -= 2
        ops = [self._primary]
        top = self._top
        for line in simpleSplit(title, _TITLE_FONT, size, self._text_width):
            top -= size * 1.2
            ops.append(self._centred(line, _TITLE_FONT, size, top, fonts))
        return ops, top

    def _body(
        self,
        ops: list[str],
        paragraphs: Sequence[Sequence[str]],
        top: float,
        bottom: float,
        fonts: Callable[[str], str],
    ) -> None:
        ops.append(self._text)
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
                    ops.append(self._centred(line, _BODY_FONT, _BODY_SIZE, y, fonts))

    def _centred(
        self, line: str, font: str, size: float, y: float, fonts: Callable[[str], str]
    ) -> str:
        x = (self.width - stringWidth(line, font, size)) / 2
        return f"BT 1 0 0 1 {fp_str(x, y)} Tm {text_ops(line, font, size, fonts)} ET"

    def _qr(self, ops: list[str], cred_url: str, fonts: Callable[[str], str]) -> None:
        left = self.width - _MARGIN - _QR_SIZE
        bottom = _MARGIN
        modules, image = qr_image(cred_url)
        # White quiet zone first: scanners need it whatever the background colour.
        quiet = 4 * _QR_SIZE / modules
        side = _QR_SIZE + 2 * quiet
        ops.append("1 1 1 rg")
        ops.append(f"n {fp_str(left - quiet, bottom - quiet, side, side)} re f*")
        ops.append(f"q\n{fp_str(_QR_SIZE, 0, 0, _QR_SIZE, left, bottom)} cm")
        ops.append(image)
        ops.append("Q")
        ops.append(self._text)
        verify = text_ops(f"Verify: {cred_url}", _BODY_FONT, 8, fonts)
        ops.append(f"BT 1 0 0 1 {fp_str(_MARGIN, _MARGIN - 6)} Tm {verify} ET")


def _color_ops(color: Color, operator: str = "rg") -> str:
    return f"{fp_str(color.red, color.green, color.blue)} {operator}"


def _capture(
    drawing: Drawing, at: tuple[float, float]
) -> tuple[list[str], dict[str, str], dict[str, dict[str, float]]] | None:
    """The operators reportlab draws ``drawing`` with at ``at``, the fonts they name and their
    graphics states; None when they need other objects (an embedded font, an image)."""
    canvas = Canvas(io.BytesIO(), invariant=1)
    doc = canvas._doc
    objects, start = set(doc.idToObject), len(canvas._code)
    renderPDF.draw(drawing, canvas, *at)
    fonts = dict(doc.fontMapping)
    if (
        set(doc.idToObject) != objects
        or doc.delayedFonts
        or any(pdfmetrics.getFont(name)._dynamicFont for name in fonts)
    ):
        return None
    states = {name: {key: value} for (key, value), name in canvas._extgstate._c.items()}
    return list(canvas._code[start:]), fonts, states


def _paragraphs(text: str) -> list[list[str]]:
    """Blank lines separate paragraphs; single newlines are kept as line breaks."""
    blocks = re.split(r"\n[ \t]*\n", text.strip())
    return [[line.strip() for line in block.splitlines()] for block in blocks if block.strip()]
