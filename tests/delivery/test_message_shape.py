"""Message shape: one message per notifier per version naming every rule, the headline of a
new article once, hunks spaced as the text is; notify-test says why a send failed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from watcher.cli.commands import main
from watcher.delivery.outbox import per_version
from watcher.delivery.render import Renderer, sample_alert
from watcher.records import AlertRecord, PendingDelivery

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def pending(alert: AlertRecord, delivery_id: int) -> PendingDelivery:
    return PendingDelivery(delivery_id, "desk", "pending", 0, NOW, NOW, frozenset(), alert)


def edit(alert_id: int, rule: str, article_id: int, version: int) -> AlertRecord:
    base = sample_alert(NOW)
    return replace(base, id=alert_id, rule=rule, article_id=article_id, version=version)


def test_alerts_of_one_version_are_one_message_naming_every_rule() -> None:
    waiting = [
        pending(edit(1, "ceasefire", 7, 2), 1),
        pending(edit(2, "other-story", 8, 1), 2),
        pending(edit(3, "stealth-edits", 7, 2), 3),
    ]
    groups = per_version(waiting)
    assert [[d.id for d in group] for group in groups] == [[1, 3], [2]]
    message = Renderer().alert(*[d.alert for d in groups[0]])
    assert message.subject.startswith("[watcher] ceasefire, stealth-edits (substance, headline):")
    assert 'Edited article (substance, headline), rules "ceasefire, stealth-edits"' in message.text
    assert "alerts 1, 3" in message.text
    assert message.text.count("What changed") == 1
    assert "rules **ceasefire, stealth-edits**" in message.html.replace("<b>", "**").replace(
        "</b>", "**"
    )


def test_a_new_article_shows_its_headline_once() -> None:
    title = "Truce holds in border town"
    alert = replace(
        sample_alert(NOW),
        event="new",
        title=title,
        detail={"added": [f"{title} A fragile truce held overnight."], "removed": []},
    )
    message = Renderer().alert(alert)
    for body in (message.text, message.markdown):
        assert body.count(title) == 1, body
    assert "A fragile truce held overnight." in message.text


def test_hunks_carry_no_stray_spaces() -> None:
    hunks = [
        {"before": "talks are possible ", "removed": "pause", "added": "", "after": "resumed"},
        {"before": "we meet on Friday", "removed": "", "added": "Saturday", "after": ", they said"},
    ]
    alert = replace(sample_alert(NOW), detail={**sample_alert(NOW).detail, "hunks": hunks})
    text = Renderer().alert(alert).text
    assert "…talks are possible [-pause-] resumed…" in text
    assert "…we meet on Friday {+Saturday+}, they said…" in text
    markdown = Renderer().alert(alert).markdown
    assert "possible ~~pause~~ resumed" in markdown and "**Saturday**, they" in markdown


def test_notify_test_says_why_a_send_failed(tmp_path: Path) -> None:
    config = tmp_path / "watcher.yaml"
    config.write_text('notifiers: {desk: "json://127.0.0.1:9/hook"}\n')
    result = CliRunner().invoke(main, ["notify-test", "desk", "-c", str(config)])
    assert result.exit_code == 1
    line = result.stdout.strip()
    assert "FAILED:" in line and "apprise: FAILURE" not in line, line


def test_a_flip_flop_says_so_once_in_every_format() -> None:
    sample = sample_alert(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    alert = replace(sample, detail={**sample.detail, "classes": ["flip-flop"]})
    message = Renderer().alert(alert)
    assert message.subject.startswith("[watcher] sample (flip-flop): ")
    for body in (message.text, message.html, message.markdown):
        assert "keeps alternating between texts it has shown" in body
        assert "no further alert until it shows a new text" in body
