"""The runbook names only commands, options and scripts that exist."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import click
import pytest

from tests.cli.test_readme import options, resolve

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def shell_lines() -> list[str]:
    """Every line of the runbook's ``sh`` blocks, continuations joined."""
    text = OPERATIONS.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.strip() for line in joined.splitlines() if line.strip()]
    return lines


def words_after(program: str) -> list[list[str]]:
    found = []
    for line in shell_lines():
        words = shlex.split(line.split(" #", 1)[0])
        if program in words:
            found.append(words[words.index(program) + 1 :])
    return found


def test_every_credbatch_command_and_option_exists() -> None:
    lines = words_after("credbatch")
    assert len(lines) >= 5
    for words in lines:
        command, rest = resolve(words)
        assert not isinstance(command, click.Group), words
        for word in rest:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in options(command), (command.name, word)


def test_every_ops_script_and_subcommand_exists() -> None:
    calls = [w for w in words_after("-m") if w and w[0].startswith("ops.")]
    assert {c[0] for c in calls} >= {"ops.database", "ops.queues"}
    for module, subcommand, *_ in calls:
        main = importlib.import_module(module).main
        with pytest.raises(SystemExit) as helped:
            main([subcommand, "--help"])
        assert helped.value.code == 0, (module, subcommand)
