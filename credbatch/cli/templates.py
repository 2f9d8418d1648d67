"""`credbatch templates create|list|preview`: email, SMS and certificate templates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from google.protobuf.message import Message

from credbatch.cli.client import (
    EXIT_INVALID,
    CliError,
    address_option,
    channel,
    resolve,
    resource_name,
    rpc_errors,
    token_option,
)
from credbatch.cli.documents import load_document, prefix_enum, to_message
from credbatch.cli.output import note, out, table, timestamp
from credbatch.gen.templates.v1 import (
    templates_pb2,
    templates_service_pb2,
    templates_service_pb2_grpc,
)

Stub = templates_service_pb2_grpc.TemplateServiceStub
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Kind:
    """One kind of template on the wire: its RPCs and requests differ only by its name.

    Attributes:
        message: its message (`EmailTemplate`): the RPCs are `Create<message>` and
            `List<message>s`, each with its `...Request`.
        field: its field in the create request; the list response's field is the plural.
    """

    message: type[Message]
    field: str

    def _call(self, verb: str) -> str:
        return f"{verb}{self.message.DESCRIPTOR.name}{'s' if verb == 'List' else ''}"

    def rpc(self, stub: Stub, verb: str) -> Any:
        return getattr(stub, self._call(verb))

    def request(self, verb: str) -> Any:
        return getattr(templates_service_pb2, f"{self._call(verb)}Request")


_KINDS = {
    "email": _Kind(templates_pb2.EmailTemplate, "email_template"),
    "sms": _Kind(templates_pb2.SmsTemplate, "sms_template"),
    "certificate": _Kind(templates_pb2.CertificateTemplate, "certificate_template"),
}
KINDS = tuple(_KINDS)


def _certificate_data(data: dict[str, Any], source: Path) -> dict[str, Any]:
    """Resolve `layout.logo_file` (a path relative to the file) into the logo bytes."""
    layout = data.get("layout")
    if isinstance(layout, dict):
        for key, prefix in (("page_size", "PAGE_SIZE_"), ("orientation", "ORIENTATION_")):
            if key in layout:
                layout[key] = prefix_enum(layout[key], prefix)
        logo_file = layout.pop("logo_file", None)
        if logo_file:
            import base64

            logo_path = source.parent / str(logo_file)
            try:
                layout["logo"] = base64.b64encode(logo_path.read_bytes()).decode()
            except OSError as error:
                raise CliError(f"cannot read logo {logo_path}: {error.strerror}") from None
            if "logo_mime_type" not in layout:
                jpeg = logo_path.suffix.lower() in (".jpg", ".jpeg")
                layout["logo_mime_type"] = "image/jpeg" if jpeg else "image/png"
    return data


def create_template(
    stub: Stub, kind: str, template: Message, schema: str, metadata: Metadata
) -> Any:
    """Create one template of `kind`; `schema` (optional) checks its placeholders."""
    spec = _KINDS[kind]
    request = spec.request("Create")(
        **{spec.field: template},
        request_id=str(uuid.uuid4()),
        validate_against_schema=resource_name("schemas", schema) if schema else "",
    )
    return spec.rpc(stub, "Create")(request, metadata=metadata, timeout=30)


def template_from_file(kind: str, path: Path) -> Message:
    data = load_document(path)
    if kind == "certificate":
        data = _certificate_data(data, path)
    return to_message(data, _KINDS[kind].message(), path)


@click.group()
def templates() -> None:
    """Email, SMS and certificate templates."""


@templates.command("create")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", default="", help="Check the placeholders against this schema.")
@token_option
@address_option("templates")
def create(kind: str, file: Path, schema: str, token: str | None, templates_addr: str) -> None:
    """Create a KIND template from a JSON or YAML FILE.

    \b
    email:       display_name, subject, html_body, text_body
    sms:         display_name, body
    certificate: display_name, title, body, layout {page_size, orientation, primary_color,
                 text_color, background_color, logo_file}
    """
    template = template_from_file(kind, file)
    endpoint = resolve("templates", token, templates_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        created = create_template(Stub(chan), kind, template, schema, endpoint.metadata)
    note(f"created {kind} template {created.display_name}")
    out.print(created.name)


def _all_pages(call: Any, request_type: Any, field: str, metadata: Metadata) -> list[Any]:
    items: list[Any] = []
    page_token = ""
    while True:
        response = call(
            request_type(page_size=200, page_token=page_token), metadata=metadata, timeout=30
        )
        items.extend(getattr(response, field))
        page_token = response.next_page_token
        if not page_token:
            return items


@templates.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@token_option
@address_option("templates")
def list_(kind: str | None, token: str | None, templates_addr: str) -> None:
    """List templates."""
    endpoint = resolve("templates", token, templates_addr)
    rows: list[list[object]] = []
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = Stub(chan)
        for name, spec in _KINDS.items():
            if kind not in (None, name):
                continue
            for item in _all_pages(
                spec.rpc(stub, "List"), spec.request("List"), f"{spec.field}s", endpoint.metadata
            ):
                rows.append(_row(name, item, getattr(item, "is_default", False)))
    table(
        f"{len(rows)} template(s)",
        ["kind", "name", "display name", "default", "placeholders", "created"],
        rows,
    )


def _row(kind: str, template: Any, is_default: bool) -> list[object]:
    return [
        kind,
        template.name,
        template.display_name,
        "yes" if is_default else "",
        ", ".join(template.placeholders),
        timestamp(template.create_time),
    ]


def _values(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--value must be NAME=VALUE, got {pair!r}", EXIT_INVALID)
        values[key] = value
    return values


def render_preview(
    stub: Stub, template: str, schema: str, values: dict[str, str], metadata: Metadata
) -> templates_service_pb2.RenderTemplatePreviewResponse:
    return stub.RenderTemplatePreview(
        templates_service_pb2.RenderTemplatePreviewRequest(
            template=template,
            schema=resource_name("schemas", schema) if schema else "",
            sample_values=values,
        ),
        metadata=metadata,
        timeout=60,
    )


def preview_bytes(response: templates_service_pb2.RenderTemplatePreviewResponse) -> bytes:
    """The preview as a file: PDF for certificates, HTML for emails, text for SMS."""
    which = response.WhichOneof("preview")
    if which == "certificate":
        return bytes(response.certificate.pdf)
    if which == "email":
        email = response.email
        return (
            f"<!-- Subject: {email.subject} -->\n{email.html_body}\n"
            f"<!-- text body:\n{email.text_body.replace('-->', '--&gt;')}\n-->\n"
        ).encode()
    if which == "sms":
        sms = response.sms
        return f"{sms.body}\n".encode()
    raise CliError("the service returned an empty preview")


@templates.command("preview")
@click.argument("template")
@click.option(
    "--schema", default="", help="Use this schema's sample values and check placeholders."
)
@click.option("--value", "values", multiple=True, help="NAME=VALUE overriding a sample value.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the preview (PDF, HTML or text).",
)
@token_option
@address_option("templates")
def preview(
    template: str,
    schema: str,
    values: tuple[str, ...],
    output: Path,
    token: str | None,
    templates_addr: str,
) -> None:
    """Render TEMPLATE (e.g. certificateTemplates/ID) with sample values into a file."""
    if "/" not in template:
        raise CliError(
            "TEMPLATE is a resource name: emailTemplates/ID, smsTemplates/ID or "
            "certificateTemplates/ID",
            EXIT_INVALID,
        )
    endpoint = resolve("templates", token, templates_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        response = render_preview(Stub(chan), template, schema, _values(values), endpoint.metadata)
    data = preview_bytes(response)
    output.write_bytes(data)
    which = response.WhichOneof("preview")
    if which == "sms":
        sms = response.sms
        note(f"SMS: {sms.length} {sms.encoding} units in {sms.segment_count} segment(s)")
    note(f"wrote {which} preview ({len(data):,} bytes)")
    out.print(str(output))
