"""`credbatch templates create|list|preview`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixtures.cli_org import Org
from tests.fixtures.cli_system import System


def test_list_shows_created_and_default_templates(system: System, org: Org, tmp_path: Path) -> None:
    sms = tmp_path / "sms.yaml"
    sms.write_text("display_name: Short\nbody: 'Hi {{ full_name }}: {{ claim_url }}'\n")
    created = system.cli(
        "templates", "create", "sms", str(sms), "--schema", org.schema, token=org.token
    )
    assert created.returncode == 0, created.stderr
    sms_name = created.stdout.strip()
    assert sms_name.startswith("smsTemplates/")
    listed = system.cli("templates", "list", token=org.token)
    assert listed.returncode == 0, listed.stderr
    for name in (org.email_template, org.certificate_template, sms_name):
        assert name in listed.stdout
    # Every tenant has built-in default email and SMS templates.
    assert "yes" in listed.stdout
    only = system.cli("templates", "list", "--kind", "certificate", token=org.token)
    assert org.certificate_template in only.stdout
    assert org.email_template not in only.stdout


def _preview(
    system: System, org: Org, template: str, output: Path
) -> subprocess.CompletedProcess[str]:
    """`credbatch templates preview` with the org's schema and one sample value."""
    return system.cli(
        "templates",
        "preview",
        template,
        "--schema",
        org.schema,
        "--value",
        "full_name=Ada Lovelace",
        "-o",
        str(output),
        token=org.token,
    )


def test_preview_writes_a_pdf_and_an_html_file(system: System, org: Org, tmp_path: Path) -> None:
    pdf = tmp_path / "certificate.pdf"
    result = _preview(system, org, org.certificate_template, pdf)
    assert result.returncode == 0, result.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    html = tmp_path / "email.html"
    result = _preview(system, org, org.email_template, html)
    assert result.returncode == 0, result.stderr
    assert "Hello Ada Lovelace" in html.read_text()


def test_placeholder_unknown_to_the_schema_is_refused(
    system: System, org: Org, tmp_path: Path
) -> None:
    bad = tmp_path / "email.yaml"
    bad.write_text("display_name: Bad\nsubject: '{{ nickname }}'\nhtml_body: x\ntext_body: x\n")
    result = system.cli(
        "templates", "create", "email", str(bad), "--schema", org.schema, token=org.token
    )
    assert result.returncode == 5
    assert "nickname" in result.stderr


def test_preview_needs_a_resource_name(system: System, org: Org, tmp_path: Path) -> None:
    result = system.cli("templates", "preview", "abc", "-o", str(tmp_path / "x"), token=org.token)
    assert result.returncode == 5
    assert "resource name" in result.stderr
