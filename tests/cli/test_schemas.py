"""`credbatch schemas create|list` against the running TemplateService."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.cli_org import Org
from tests.fixtures.cli_system import System


def test_create_from_json_then_list(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(
        json.dumps(
            {
                "display_name": "Membership card",
                "attributes": [
                    {"name": "member_no", "type": "ATTRIBUTE_TYPE_INTEGER", "required": True},
                    {"name": "since", "type": "date"},
                ],
            }
        )
    )
    created = system.cli("schemas", "create", str(path), token=org.token)
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip()
    assert name.startswith("schemas/")
    listed = system.cli("schemas", "list", token=org.token)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout
    assert org.schema in listed.stdout
    assert "member_no:integer" in listed.stdout


def test_invalid_schema_names_the_field(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("display_name: Broken\nattributes:\n  - name: email\n    type: string\n")
    result = system.cli("schemas", "create", str(path), token=org.token)
    assert result.returncode == 5
    assert "attributes[0].name" in result.stderr or "attributes" in result.stderr
    assert "Traceback" not in result.stderr


def test_unparseable_file_is_refused_before_any_call(
    system: System, org: Org, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("display_name: [unclosed\n")
    result = system.cli("schemas", "create", str(path), token=org.token)
    assert result.returncode == 5
    assert "not valid JSON/YAML" in result.stderr
