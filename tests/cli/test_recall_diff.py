"""An edit in a paragraph the extractor drops, as a user meets it: `watcher check` records a
change, the stored text stays the story's, and `watcher diff` and the alert both show the
edit (the diff under a line of its own: "[outside the extracted text]")."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from support.processes import cli
from support.recallpage import PROMO, STORY, recall_page
from support.server import LoopbackServer, Reply
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


def test_an_edit_the_extractor_drops_is_a_change_shown_in_the_diff_and_the_alert(
    site: tuple[Site, Path],
) -> None:
    page, config = site
    assert "1 new" in cli(config, "check").stdout
    assert "0 changed" in cli(config, "check", "--recheck-all").stdout  # churn alone: nothing
    page.promo = PROMO.replace("every clause", "each clause")
    done = cli(config, "check", "--recheck-all")
    out = done.stdout
    assert done.code == 0 and "1 changed" in out and "alerts: 1" in out
    # The alert's message, written by console://, says where the edit is.
    edit = next(line for line in out.splitlines() if "[-every-]{+each+} clause" in line)
    assert edit.endswith("(outside the extracted text)")

    done = cli(config, "diff", page.url)
    out = done.stdout
    assert done.code == 0 and "(+1 / -1 words)" in out
    assert OUTSIDE_EXTRACT in out
    after_heading = out[out.index(OUTSIDE_EXTRACT) :]
    assert "[-every-]" in after_heading and "{+each+}" in after_heading

    alert = json.loads(cli(config, "alerts", "--json").stdout)[-1]
    assert alert["event"] == "changed" and any("each" in text for text in alert["added"])

    # What is stored and shown as the story is what the extractor read, not the promo.
    done = cli(config, "show", page.url)
    shown = done.stdout
    assert done.code == 0 and "Negotiators from both sides" in shown and "each clause" not in shown

    # An edit in the story itself is not said to be outside it.
    page.paragraphs[1] = page.paragraphs[1].replace("40 detainees", "60 detainees")
    out = cli(config, "check", "--recheck-all").stdout
    edit = next(line for line in out.splitlines() if "[-40-]{+60+}" in line)
    assert "outside" not in edit
