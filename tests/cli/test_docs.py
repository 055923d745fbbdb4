"""The documentation does not lie: every config example in it loads."""

from __future__ import annotations

import re

import pytest

from support.paths import ROOT
from watcher.config.loading import parse_config

EXAMPLES = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_readme_has_config_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda text: text.splitlines()[0][:40])
def test_readme_config_example_loads(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "example")
    monkeypatch.setenv("MATRIX_PASSWORD", "example")
    monkeypatch.setenv("WATCHER_WEB_TOKEN", "an-example-token-long-enough")
    parse_config(example, "README.md")


def _all_commands() -> list[tuple[str, ...]]:
    import click

    from watcher.cli.commands import main

    found: list[tuple[str, ...]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            found.append((*path, name))
            if isinstance(command, click.Group):
                walk(command, (*path, name))

    walk(main, ())
    return sorted(found)


@pytest.mark.parametrize("command", _all_commands(), ids=" ".join)
def test_every_command_help_has_an_example(command: tuple[str, ...]) -> None:
    """A user reaching for `watcher X --help` finds a line to copy."""
    from click.testing import CliRunner

    from watcher.cli.commands import main

    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    examples = result.output.split("Example", 1)[1]
    assert f"watcher {' '.join(command)}" in examples
