"""`credbatch demo` (what `make demo` runs), scaled down, against the running system."""

from __future__ import annotations

import csv
from email import message_from_bytes, policy
from pathlib import Path

import phonenumbers
from pypdf import PdfReader

from tests.fixtures.cli_system import System

ROWS = 40


def test_demo_issues_every_record_and_prints_what_it_produced(
    system: System, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    result = system.cli(
        "demo",
        "--rows",
        str(ROWS),
        "--out-dir",
        str(out),
        "--mail-dir",
        str(system.mail_dir),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"{ROWS:,} records INVITED" in result.stdout
    for name in ("report.csv", "certificate.pdf", "invitation.eml", f"batch-{ROWS}.csv"):
        assert str(out / name) in result.stdout, name
        assert (out / name).stat().st_size > 0
    assert (out / "certificate.pdf").read_bytes().startswith(b"%PDF")
    with (out / "report.csv").open(newline="") as handle:
        report = list(csv.DictReader(handle))
    assert len(report) == ROWS
    # Row 8 is addressed at the domain the SMTP sink bounces; its bounce is on the record.
    bounced = [r for r in report if r["email_delivery"] == "DELIVERY_STATE_BOUNCED"]
    assert [r["row_number"] for r in bounced] == ["8"]
    assert bounced[0]["email"].endswith("@bounce.example")
    assert bounced[0]["delivery_code"] == "5.1.1"
    # One invitation per row, and row 8's again at its corrected address (below).
    assert f"({ROWS + 1:,} for this run)" in result.stdout
    # The demo corrects that bounced address and sends its invitation again: the record is
    # invited at the new address, the bounced invitation's claim link answers 410.
    assert "row 8 corrected and resent: now INVITED" in result.stdout
    assert "1 invitation(s) at the new address" in result.stdout
    assert "claim link now answers 410" in result.stdout
    with (out / "report-after-resend.csv").open(newline="") as handle:
        after = {r["row_number"]: r for r in csv.DictReader(handle)}
    assert after["8"]["record_id"] == bounced[0]["record_id"]
    assert after["8"]["email"].endswith("@example.org")
    assert after["8"]["state"] == "RECORD_STATE_INVITED"
    assert after["8"]["email_delivery"] in ("DELIVERY_STATE_ACCEPTED", "DELIVERY_STATE_DELIVERED")
    resent = message_from_bytes((out / "resent-invitation.eml").read_bytes(), policy=policy.default)
    assert resent["To"] == after["8"]["email"]
    # The profile the demo set shows where holders look: the claim page (in German, as asked),
    # the invitation's sender, the certificate (its logo slot and the name in its body).
    claim = (out / "claim.html").read_text(encoding="utf-8")
    assert '<strong lang="de">Beispiel-Trainingsakademie</strong>' in claim
    assert '<img class="logo" src="/tenants/' in claim
    invitation = message_from_bytes((out / "invitation.eml").read_bytes(), policy=policy.default)
    assert invitation["From"].addresses[0].display_name == "Example Training Academy"
    assert invitation["Reply-To"] == "registrar@academy.example"
    certificate = PdfReader(out / "certificate.pdf").pages[0]
    # The logo's image object (the QR code is an inline image of the page's content).
    assert [image.name for image in certificate.images if not image.name.startswith("~")] != []
    assert len([image for image in certificate.images if not image.name.startswith("~")]) == 1
    assert "Example Training Academy" in certificate.extract_text()


def test_demo_with_services_down(system: System, tmp_path: Path) -> None:
    result = system.cli(
        "demo",
        "--out-dir",
        str(tmp_path / "demo"),
        extra_env={"CREDBATCH_TEMPLATES_ADDR": "127.0.0.1:1"},
    )
    assert result.returncode == 3
    assert "cannot reach TemplateService" in result.stderr


def test_generated_rows_keep_the_sample_header_and_unique_recipients() -> None:
    from credbatch.cli.demo import make_rows

    sample = b"\xef\xbb\xbfemail,phone,full_name,course,completed_on,score\n" + (
        b"a@example.org,+12025550100,Ada,First Aid,2026-01-31,90\n"
    )
    rows = list(csv.reader(make_rows(sample, 1000, "run1").decode().splitlines()))
    assert rows[0] == ["email", "phone", "full_name", "course", "completed_on", "score"]
    assert len(rows) == 1001
    assert len({r[0] for r in rows[1:]}) == 1000 and all("run1" in r[0] for r in rows[1:])
    assert len({r[1] for r in rows[1:]}) == 1000
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(r[1])) for r in rows[1:])
    assert {r[4] for r in rows[1:]} == {"2026-01-31"}
