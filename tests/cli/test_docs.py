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
