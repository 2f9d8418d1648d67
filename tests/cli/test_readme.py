"""The README's CLI section names only commands and options the CLI has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from credbatch.cli.limits import limits
from credbatch.cli.main import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def cli_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## CLI\n", 1)[1].split("\n## ", 1)[0]


def command_lines(section: str) -> list[list[str]]:
    """Each `credbatch …` line of the section's shell block, continuations joined."""
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    lines = []
    for line in block.splitlines():
        if line.startswith("credbatch "):
            words = shlex.split(line.split("#", 1)[0].replace("[", " ").replace("]", " "))
            lines.append(words[1:])
    return lines


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command the words name and the words after it."""
    command: click.Command = cli
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command, words = command.commands[words[0]], words[1:]
    return command, words


def options(command: click.Command) -> set[str]:
    # A flag pair (`--revoke/--keep-valid`) keeps its second spelling in secondary_opts.
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def test_every_documented_command_and_option_exists() -> None:
    lines = command_lines(cli_section())
    assert len(lines) >= 10
    for words in lines:
        command, rest = resolve(words)
        assert not isinstance(command, click.Group), words
        for word in rest:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in options(command), (command.name, word)


def test_options_named_in_the_prose_exist() -> None:
    flags = re.findall(r"`(--[a-z-]+)", cli_section())
    assert "--token" in flags
    for flag in flags:
        assert any(flag in options(c) for c in all_commands(cli)), flag


def test_every_command_calling_a_service_takes_a_token() -> None:
    # `token` signs one, `demo` mints its own, and `keys rewrap`, `webhooks rewrap-secrets`
    # and `limits show|set` work on the database as its owner; every other command calls a
    # service.
    owner_commands = [*limits.commands.values()]
    for command in all_commands(cli):
        if command.name in ("token", "demo", "rewrap", "rewrap-secrets"):
            continue
        if not any(command is c for c in owner_commands):
            assert "--token" in options(command), command.name


def all_commands(command: click.Command) -> list[click.Command]:
    if isinstance(command, click.Group):
        return [c for sub in command.commands.values() for c in all_commands(sub)]
    return [command]
