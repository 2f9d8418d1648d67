"""One-page PDF files written directly: the fixed objects once, per page only what changes.

reportlab builds a document as a graph of objects and formats every one of them in Python
for every file: about half of a certificate's render. A certificate is one page whose fonts,
logo and frame are the same for every record of a template, so ``OnePageWriter`` writes the
catalog, the page tree, the page, its fonts and the logo image once, and each file adds only
the page's content stream (compressed), the document information and the cross-reference
table.

Text is encoded as reportlab encodes it for its standard (Type 1) fonts, so a page shows the
same glyphs whichever writes it: WinAnsi for Helvetica, and a character the font cannot
encode drawn from the font's substitutes, else as its "not defined" mark (ZapfDingbats).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from reportlab.lib.rl_accel import escapePDF, fp_str
from reportlab.pdfbase import pdfmetrics

_HEADER = b"%PDF-1.4\n%\x93\x8c\x8b\x9e\n"


@dataclass(frozen=True, slots=True)
class JpegImage:
    """A JPEG to place on the page, embedded as it is (DCTDecode)."""

    jpeg: bytes
    pixels_wide: int
    pixels_high: int


class FontNames:
    """Resource names of the page's fonts (``/F1``, ``/F2``...), in the order first named.

    Frozen once a writer has its fonts: naming a font then that the page's resources do not
    hold raises KeyError rather than writing a page that refers to nothing.
    """

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self._names: dict[str, str] = dict(names or {})
        self._frozen = False

    def __getitem__(self, font_name: str) -> str:
        name = self._names.get(font_name)
        if name is None:
            if self._frozen:
                raise KeyError(font_name)
            name = self._names[font_name] = f"/F{len(self._names) + 1}"
        return name

    def add_with_substitutes(self, font_name: str) -> None:
        """Name ``font_name`` and every font ``text_ops`` may draw its text with."""
        font = pdfmetrics.getFont(font_name)
        for each in (font, *font.substitutionFonts, font._notdefFont):
            self[each.fontName]

    def freeze(self) -> None:
        self._frozen = True

    def items(self) -> Iterable[tuple[str, str]]:
        return self._names.items()


def text_ops(text: str, font_name: str, size: float, fonts: Callable[[str], str]) -> str:
    """``BT … ET``-less operators showing ``text`` in ``font_name`` at ``size`` (the font is
    set first), with the font's substitutes for what it cannot encode."""
    font = pdfmetrics.getFont(font_name)
    size_text = fp_str(size)
    ops = [f"{fonts(font_name)} {size_text} Tf"]
    current = font
    for part_font, encoded in pdfmetrics.unicode2T1(text, [font, *font.substitutionFonts]):
        if part_font is not current:
            ops.append(f"{fonts(part_font.fontName)} {size_text} Tf")
            current = part_font
        ops.append(f"({escapePDF(encoded)}) Tj")
    return " ".join(ops)


def _text_string(text: str) -> bytes:
    """A PDF text string: literal when ASCII, else UTF-16BE with its byte order mark."""
    if text.isascii():
        return f"({escapePDF(text.encode('ascii'))})".encode("ascii")
    return b"<" + ("\ufeff" + text).encode("utf-16-be").hex().upper().encode("ascii") + b">"


class OnePageWriter:
    """Writes one-page PDFs of a fixed size, fonts, graphics states and optional image.

    Objects 1-3 are the catalog, the page tree and the page, then one object per font and the
    image; every file ends with its content stream and its information dictionary.
    """

    def __init__(
        self,
        width: float,
        height: float,
        fonts: FontNames,
        graphics_states: Mapping[str, Mapping[str, float]],
        image: JpegImage | None,
        image_name: str = "/Im1",
    ) -> None:
        fonts.freeze()
        font_items = list(fonts.items())
        first_font = 4
        image_number = first_font + len(font_items)
        self._contents = image_number + (image is not None)
        font_dict = " ".join(
            f"{name} {first_font + i} 0 R" for i, (_, name) in enumerate(font_items)
        )
        resources = [f"/Font << {font_dict} >>", "/ProcSet [ /PDF /Text /ImageB /ImageC /ImageI ]"]
        if image is not None:
            resources.append(f"/XObject << {image_name} {image_number} 0 R >>")
        if graphics_states:
            states = " ".join(
                f"/{name} << {' '.join(f'/{k} {fp_str(v)}' for k, v in state.items())} >>"
                for name, state in graphics_states.items()
            )
            resources.append(f"/ExtGState << {states} >>")
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [ 3 0 R ] /Count 1 >>",
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [ 0 0 {fp_str(width)} {fp_str(height)} ]"
                f" /Resources << {' '.join(resources)} >> /Contents {self._contents} 0 R >>"
            ).encode("ascii"),
        ]
        for font_name, _ in font_items:
            font = pdfmetrics.getFont(font_name)
            # Symbol and ZapfDingbats use their built-in encodings, as reportlab leaves them.
            encoding = (
                f" /Encoding /{font.encName}"
                if font.encName in ("WinAnsiEncoding", "MacRomanEncoding")
                else ""
            )
            font_object = f"<< /Type /Font /Subtype /Type1 /BaseFont /{font.face.name}{encoding} >>"
            objects.append(font_object.encode("ascii"))
        if image is not None:
            objects.append(
                (
                    f"<< /Type /XObject /Subtype /Image /Width {image.pixels_wide} /Height"
                    f" {image.pixels_high} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter"
                    f" /DCTDecode /Length {len(image.jpeg)} >>\nstream\n"
                ).encode("ascii")
                + image.jpeg
                + b"\nendstream"
            )
        fixed = bytearray(_HEADER)
        self._offsets: list[int] = []
        for number, body in enumerate(objects, start=1):
            self._offsets.append(len(fixed))
            fixed += b"%d 0 obj\n%b\nendobj\n" % (number, body)
        self._fixed = bytes(fixed)

    def write(self, content: str, title: str) -> bytes:
        """The PDF file: the fixed objects, then ``content`` (page operators) and ``title``."""
        stream = zlib.compress(content.encode("latin-1"))
        out = bytearray(self._fixed)
        offsets = list(self._offsets)
        info = self._contents + 1
        offsets.append(len(out))
        out += b"%d 0 obj\n<< /Filter /FlateDecode /Length %d >>\nstream\n" % (
            self._contents,
            len(stream),
        )
        out += stream
        out += b"\nendstream\nendobj\n"
        offsets.append(len(out))
        out += b"%d 0 obj\n<< /Title %b /Producer (credbatch) >>\nendobj\n" % (
            info,
            _text_string(title),
        )
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (info + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            info + 1,
            info,
            xref,
        )
        return bytes(out)
