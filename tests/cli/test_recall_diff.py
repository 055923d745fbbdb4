"""An edit in a paragraph the extractor drops, as a user meets it: `watcher check` records a
change, the stored text stays the story's, and `watcher diff` and the alert both show the
edit (the diff under a line of its own: "[outside the extracted text]")."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.recallpage import PROMO, STORY, recall_page
from support.server import LoopbackServer, Reply
from watcher.cli.commands import main
from watcher.pipeline.normalise import OUTSIDE_EXTRACT


class Site:
    """One article page that churns on every request, and its RSS feed."""

    def __init__(self, loopback: LoopbackServer) -> None:
        self.promo = PROMO
        self.paragraphs = list(STORY)
        self.rng = random.Random(5)
        self.url = loopback.url("/news/truce.html")
        loopback.route("/news/truce.html", lambda _r: self._page())
        rss = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
            f"<link>{loopback.url('/')}</link><description>d</description><item>"
            f"<title>Truce talks resume in Doha</title><link>{self.url}</link>"
            "<guid>truce</guid></item></channel></rss>"
        )
        loopback.route("/rss.xml", Reply(body=rss, headers={"Content-Type": "application/rss+xml"}))

    def _page(self) -> Reply:
        body = recall_page(promo=self.promo, rng=self.rng, paragraphs=self.paragraphs)
        return Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
def site(loopback: LoopbackServer, tmp_path: Path) -> tuple[Site, Path]:
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
state_dir: state
allow_private_networks: true
feeds:
  - {{name: loop, url: "{loopback.url("/rss.xml")}"}}
notifiers:
  screen: "console://"
rules:
  - {{name: edits, events: [changed], notify: [screen]}}
"""
    )
    return Site(loopback), config


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-c", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_an_edit_the_extractor_drops_is_a_change_shown_in_the_diff_and_the_alert(
    site: tuple[Site, Path],
) -> None:
    page, config = site
    assert "1 new" in run(config, "check")[1]
    assert "0 changed" in run(config, "check", "--recheck-all")[1]  # churn alone: nothing
    page.promo = PROMO.replace("every clause", "each clause")
    code, out = run(config, "check", "--recheck-all")
    assert code == 0 and "1 changed" in out and "alerts: 1" in out
    # The alert's message, written by console://, says where the edit is.
    edit = next(line for line in out.splitlines() if "[-every-]{+each+} clause" in line)
    assert edit.endswith("(outside the extracted text)")

    code, out = run(config, "diff", page.url)
    assert code == 0 and "(+1 / -1 words)" in out
    assert OUTSIDE_EXTRACT in out
    after_heading = out[out.index(OUTSIDE_EXTRACT) :]
    assert "[-every-]" in after_heading and "{+each+}" in after_heading

    alert = json.loads(run(config, "alerts", "--json")[1])[-1]
    assert alert["event"] == "changed" and any("each" in text for text in alert["added"])

    # What is stored and shown as the story is what the extractor read, not the promo.
    code, shown = run(config, "show", page.url)
    assert code == 0 and "Negotiators from both sides" in shown and "each clause" not in shown

    # An edit in the story itself is not said to be outside it.
    page.paragraphs[1] = page.paragraphs[1].replace("40 detainees", "60 detainees")
    code, out = run(config, "check", "--recheck-all")
    edit = next(line for line in out.splitlines() if "[-40-]{+60+}" in line)
    assert "outside" not in edit
