"""Certificates behind Cred_URL: ids, URLs and the compiled template of a batch.

The PDF itself is drawn by credbatch.templating.certificate (static layout resolved once per
template, the QR code as one path); the worker compiles each batch's template once
(context.py) and stores each record's PDF in the ``certificates`` table, in the same
transaction as its credential.
"""

from __future__ import annotations

import dataclasses
import uuid

from credbatch.catalog.model import CertificateTemplate
from credbatch.signing import opaque
from credbatch.templating.certificate import CompiledCertificate
from credbatch.tenants.profile import Logo


def new_certificate_id(tenant_id: uuid.UUID) -> str:
    """An unguessable id that carries its tenant (see credbatch.signing.opaque)."""
    return opaque.new_id(tenant_id)


def cred_url(public_url: str, certificate_id: str) -> str:
    return f"{public_url}/c/{certificate_id}"


def compile_certificate(
    template: CertificateTemplate, tenant_logo: Logo | None = None
) -> CompiledCertificate:
    """The template compiled; a template without a logo of its own shows the tenant's (a PNG as
    an image, an SVG as vector paths), so certificates carry the issuer's mark by default."""
    layout = template.layout
    if layout.logo is None and tenant_logo is not None:
        layout = dataclasses.replace(
            layout, logo=tenant_logo.content, logo_mime_type=tenant_logo.media_type
        )
    return CompiledCertificate(template.title, template.body, layout)
