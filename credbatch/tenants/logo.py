"""Logos: PNG, or SVG reduced to a static drawing, before anyone else sees the bytes.

A logo is served from our own origin to claim pages, mail clients and wallets, so an SVG
is a document we publish. It is refused, not repaired, unless it is a static picture:

* parsed with defusedxml, which refuses DTDs and entities (billion laughs, external
  entities reading files or URLs);
* only drawing elements are allowed: no ``script``, ``foreignObject`` (HTML inside the
  image), ``style`` (CSS can fetch and, in old engines, run code), animation
  (``set``/``animate`` can rewrite an ``href`` to ``javascript:``), ``image`` (a fetch of
  another document) or anything unknown;
* only presentation attributes are allowed, so no ``on*`` event handler; a reference
  (``href``, ``url(...)``) may only point inside the document (``#id``), so rendering the
  logo fetches nothing and tells no third party who looked at it.

What is stored is the re-serialised tree that was checked, not the upload, so comments,
processing instructions and anything the parser kept aside never reach a reader.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET  # serialising only; parsing is defusedxml's

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from PIL import Image, UnidentifiedImageError

from credbatch.tenants.profile import PNG, SVG, Logo

MAX_LOGO_BYTES = 256 * 1024
MAX_PNG_SIDE = 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_ALLOWED_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc",
        "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "linearGradient", "radialGradient", "stop", "clipPath", "mask",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES = frozenset(
    {
        "id", "class", "viewBox", "width", "height", "x", "y", "x1", "y1", "x2", "y2",
        "cx", "cy", "r", "rx", "ry", "d", "points", "transform", "preserveAspectRatio",
        "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity",
        "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
        "stroke-dashoffset", "opacity", "clip-path", "clip-rule", "mask", "href",
        "gradientUnits", "gradientTransform", "spreadMethod", "offset", "stop-color",
        "stop-opacity", "fx", "fy", "fr", "font-family", "font-size", "font-weight",
        "font-style", "text-anchor", "dominant-baseline", "letter-spacing", "dx", "dy",
        "clipPathUnits", "maskUnits", "maskContentUnits", "version", "display",
        "visibility", "color",
    }
)  # fmt: skip
# url(...) in a presentation attribute: only a fragment of this document.
_URL_REFERENCE = re.compile(r"url\s*\(\s*['\"]?\s*([^)'\"]*)", re.I)
_LOCAL_REFERENCE = re.compile(r"#[A-Za-z_][\w.-]*")


class LogoRefused(ValueError):
    """The logo is not a PNG or safe SVG within the limits; the message says why."""


def _local_name(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _check_reference(value: str, where: str) -> None:
    if not _LOCAL_REFERENCE.fullmatch(value.strip()):
        raise LogoRefused(f"{where} may only refer inside the image (#id)")


def _check_svg_element(element: ET.Element) -> None:
    namespace, name = _local_name(element.tag)
    if namespace != _SVG_NS or name not in _ALLOWED_ELEMENTS:
        raise LogoRefused(f"SVG element <{name}> is not allowed in a logo")
    for key, value in element.attrib.items():
        attr_ns, attr = _local_name(key)
        if attr_ns not in ("", _XLINK_NS) or attr not in _ALLOWED_ATTRIBUTES:
            raise LogoRefused(f"SVG attribute {attr!r} on <{name}> is not allowed in a logo")
        if attr_ns == _XLINK_NS and attr != "href":
            raise LogoRefused(f"SVG attribute xlink:{attr} is not allowed in a logo")
        if attr == "href":
            _check_reference(value, f"href on <{name}>")
        for reference in _URL_REFERENCE.findall(value):
            _check_reference(reference, f"url() in {attr!r} on <{name}>")


def sanitise_svg(content: bytes) -> bytes:
    """The SVG re-serialised after every element and attribute was checked.

    Raises:
        LogoRefused: not well-formed, has a DTD or entities, or holds anything but a static
            drawing that refers only inside itself.
    """
    try:
        root = SafeET.fromstring(content, forbid_dtd=True)
    except DefusedXmlException as error:
        raise LogoRefused("SVG may not declare a DTD or entities") from error
    except ET.ParseError as error:
        raise LogoRefused(f"SVG is not well-formed XML ({error})") from error
    if _local_name(root.tag) != (_SVG_NS, "svg"):
        raise LogoRefused("the root element must be <svg> in the SVG namespace")
    for element in root.iter():
        _check_svg_element(element)
        # Text content may carry no markup (it is text), but tails and texts stay.
    ET.register_namespace("", _SVG_NS)
    ET.register_namespace("xlink", _XLINK_NS)
    cleaned: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return cleaned


def _check_png(content: bytes) -> None:
    try:
        with Image.open(io.BytesIO(content), formats=["PNG"]) as image:
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise LogoRefused("not a valid PNG image") from error
    if width > MAX_PNG_SIDE or height > MAX_PNG_SIDE:
        raise LogoRefused(f"PNG is {width}x{height}; at most {MAX_PNG_SIDE} pixels a side")


def accept_logo(content: bytes) -> Logo:
    """The logo to store for an upload: a checked PNG as is, an SVG sanitised.

    Raises:
        LogoRefused: empty, too large, neither PNG nor SVG, or an unsafe SVG.
    """
    if not content:
        raise LogoRefused("empty")
    if len(content) > MAX_LOGO_BYTES:
        raise LogoRefused(f"{len(content)} bytes; at most {MAX_LOGO_BYTES}")
    if content.startswith(_PNG_SIGNATURE):
        _check_png(content)
        return Logo(content, PNG)
    head = content[:1024].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype")):
        cleaned = sanitise_svg(content)
        if len(cleaned) > MAX_LOGO_BYTES:
            raise LogoRefused(
                f"SVG is {len(cleaned)} bytes once re-serialised; at most {MAX_LOGO_BYTES}"
            )
        return Logo(cleaned, SVG)
    raise LogoRefused("must be a PNG or an SVG image")
