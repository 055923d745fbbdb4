"""The outbox against real receivers on loopback: an SMTP server and a webhook that go down and
come back. Time is a test clock, so hours of retries take milliseconds; every message is read
back from the receiver, never trusted from apprise's word."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.clock import Clock
from support.receivers import SmtpReceiver, Webhook, parts
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.delivery.outbox import DispatchSummary, Outbox
from watcher.records import CheckRecord, FeedEntry, NewAlert, NewVersion
from watcher.storage.store import Store


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with Webhook() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


def make_config(notifiers: str, *, rules: str = "", delivery: str = "") -> Config:
    return parse_config(
        f"""
        feeds: [{{name: wire, url: "http://127.0.0.1:9/feed.xml"}}]
        notifiers:
          {notifiers}
        delivery: {{retry: {{first: 30s, max: 1h, give_up_after: 2d}} {delivery}}}
        rules:
          - {{name: edits, events: [changed], notify: [desk]}}
          {rules}
        """
    )


def record_alerts(store: Store, clock: Clock, count: int, *, rule: str = "edits") -> None:
    """``count`` edited articles, each with one alert for ``rule``."""
    store.sync_feeds([("wire", "http://127.0.0.1:9/feed.xml")])
    for _ in range(count):
        number = store.counts()["articles"] + 1
        url = f"https://news.example.org/story-{number}"
        entry = FeedEntry(url, None, url, url, f"Story {number}", "", None)
        store.add_entries("wire", [entry], clock())
        article = store.find_article(url)
        assert article is not None
        detail = {
            "added": ["15"],
            "removed": ["12"],
            "words_added": 1,
            "words_removed": 1,
            "numbers": {"removed": ["12"], "added": ["15"]},
            "hunks": [{"before": "at least", "removed": "12", "added": "15", "after": "died"}],
            "hunks_total": 1,
        }
        version = NewVersion(f"Story {number}", "At least 15 died.", f"h{number}", "page")
        alert = NewAlert(rule, "changed", "wire", (), detail)
        store.record_check(article.id, CheckRecord(clock(), None, version=version, alerts=(alert,)))


def outbox(config: Config, store: Store, clock: Clock) -> Outbox:
    return Outbox.build(config, store, clock)


def run(box: Outbox) -> DispatchSummary:
    return asyncio.run(box.dispatch())


def states(store: Store) -> list[str]:
    return sorted(d.state for a in store.alerts() for d in a.deliveries)


# ------------------------------------------------------------------------- webhook


def test_webhook_down_then_up_delivers_every_alert_exactly_once(
    store: Store, hook: Webhook
) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: "{hook.url}"'), store, clock)
    record_alerts(store, clock, 5)
    hook.stop()  # connection refused
    for _ in range(3):
        summary = run(box)
        clock.advance(hours=1)
    # While it is down, one message a round finds out; the rest wait for its retry.
    assert (summary.messages, summary.retrying, summary.waiting) == (4, 4, 1)
    hook.start()
    hook.status = 503  # up, but unavailable
    run(box)
    assert hook.received == [] and "sent" not in states(store)
    record_alerts(store, clock, 2)  # new alerts arrive during the outage
    clock.advance(hours=1)
    run(box)
    hook.status = 200
    clock.advance(hours=1)
    summary = run(box)
    assert summary.sent == 7
    for _ in range(3):  # nothing more is ever sent
        clock.advance(hours=2)
        assert run(box).messages == 0
    titles = hook.titles()
    assert len(titles) == 7 and len(set(titles)) == 7, titles
    assert all(t.startswith("[watcher] edits: Story ") for t in titles)
    alerts = store.alerts()
    assert all(a.delivered and a.delivered_at is not None for a in alerts)
    retried = [d for a in alerts for d in a.deliveries if d.attempts > 1]
    assert retried and all(d.last_error is None for d in retried)


def test_retry_backoff_is_exponential_with_jitter_and_bounded(store: Store, hook: Webhook) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: "{hook.url}"'), store, clock)
    record_alerts(store, clock, 1)
    hook.status = 503
    waits = []
    for _ in range(9):
        run(box)
        (delivery,) = store.alerts()[0].deliveries
        assert delivery.next_try_at is not None
        waits.append((delivery.next_try_at - clock()).total_seconds())
        clock.now = delivery.next_try_at
    assert 30 <= waits[0] <= 38, waits  # first: 30 s, +25% jitter at most
    assert all(later >= earlier * 1.1 for earlier, later in itertools.pairwise(waits[:6])), waits
    assert max(waits) <= 3600 and waits[-1] >= 2700, waits
    assert "503" in (store.alerts()[0].deliveries[0].last_error or "")


def test_gives_up_after_the_configured_age_and_says_so(
    store: Store, hook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    config = make_config(f'desk: "{hook.url}"', delivery=", default: []")
    box = outbox(config, store, clock)
    record_alerts(store, clock, 1)
    hook.stop()
    caplog.set_level(logging.ERROR, logger="watcher.delivery.outbox")
    for _ in range(60):
        run(box)
        clock.advance(hours=1)
    (delivery,) = store.alerts()[0].deliveries
    assert delivery.state == "gave_up" and delivery.next_try_at is None
    assert "gave up" in caplog.text and "desk" in caplog.text
    hook.start()
    assert run(box).messages == 0 and hook.received == []


def test_only_the_failing_notifier_is_retried(store: Store, hook: Webhook) -> None:
    clock = Clock()
    with Webhook() as chat:
        config = make_config(
            f'desk: "{hook.url}"\n          chat: "{chat.url}"',
            rules="- {name: both, events: [changed], notify: [desk, chat]}",
        )
        box = outbox(config, store, clock)
        record_alerts(store, clock, 3, rule="both")
        chat.stop()
        for _ in range(4):
            run(box)
            clock.advance(hours=1)
        assert len(hook.received) == 3  # the working one got each alert once, during the outage
        chat.start()
        run(box)
        clock.advance(hours=2)
        run(box)
        assert len(chat.received) == 3 and len(hook.received) == 3
        assert len(set(chat.titles())) == 3


def test_a_notifier_with_two_services_retries_only_the_one_that_failed(
    store: Store, hook: Webhook
) -> None:
    clock = Clock()
    with Webhook() as second:
        second.status = 503
        box = outbox(make_config(f'desk: ["{hook.url}", "{second.url}"]'), store, clock)
        record_alerts(store, clock, 2)
        run(box)
        assert len(hook.received) == 2 and states(store) == ["retrying", "retrying"]
        second.status = 200
        clock.advance(hours=1)
        run(box)
        assert len(hook.received) == 2 and len(second.received) == 2
        assert states(store) == ["sent", "sent"]


# -------------------------------------------------------------- digests and limits


def test_a_down_service_costs_a_few_attempts_per_round_not_one_per_alert(
    store: Store, smtp: SmtpReceiver
) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: "{smtp.url()}"'), store, clock)
    record_alerts(store, clock, 30)
    smtp.stop()
    for _ in range(3):
        summary = run(box)
        assert (summary.messages, summary.waiting) == (4, 26)  # one window of parallel sends
        clock.advance(hours=1)
    assert len([d for a in store.alerts() for d in a.deliveries if d.attempts]) == 4
    smtp.start()
    assert run(box).sent == 30
    assert len(smtp.messages) == 30


def test_a_failed_digest_waits_for_its_retry(store: Store, hook: Webhook) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: {{urls: ["{hook.url}"], digest: 10m}}'), store, clock)
    record_alerts(store, clock, 2)
    clock.advance(minutes=10)
    hook.status = 503
    assert run(box).retrying == 2
    record_alerts(store, clock, 1)  # a new alert does not make the failed digest go early
    clock.advance(seconds=5)
    assert run(box).messages == 0
    hook.status = 200
    clock.advance(minutes=1)
    assert run(box).messages == 1
    assert hook.titles() == ["[watcher] 3 alerts: edits (3)"]


def test_digest_batches_a_window_into_one_message(store: Store, hook: Webhook) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: {{urls: ["{hook.url}"], digest: 10m}}'), store, clock)
    record_alerts(store, clock, 3)
    assert run(box).waiting == 3 and hook.received == []
    clock.advance(minutes=4)
    record_alerts(store, clock, 2)
    run(box)
    assert hook.received == []
    clock.advance(minutes=6)
    assert run(box).messages == 1
    (digest,) = hook.received
    assert digest["title"] == "[watcher] 5 alerts: edits (5)"
    assert all(f"Story {n}" in digest["message"] for n in range(1, 6))
    assert states(store) == ["sent"] * 5


def test_rate_limit_sends_the_overflow_as_a_digest_and_drops_nothing(
    store: Store, hook: Webhook
) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: {{urls: ["{hook.url}"], rate_limit: 3/h}}'), store, clock)
    record_alerts(store, clock, 10)
    run(box)
    titles = hook.titles()
    assert len(titles) == 3, titles  # two alerts alone, the other eight in one digest
    assert sorted(titles)[0] == "[watcher] 8 alerts: edits (8)"
    assert states(store) == ["sent"] * 10
    record_alerts(store, clock, 4)
    clock.advance(minutes=30)
    assert run(box).waiting == 4 and len(hook.received) == 3  # the hour is used up
    clock.advance(minutes=31)
    run(box)
    assert len(hook.received) == 6 and states(store) == ["sent"] * 14


def test_digest_of_500_alerts(store: Store) -> None:
    """How fast is measured by bench/outbox_bench.py; here, that all 500 are in it."""
    clock = Clock()
    record_alerts(store, clock, 500)
    box = outbox(make_config('desk: "json://127.0.0.1:9/x"'), store, clock)
    message = box.renderer.digest(store.alerts())
    assert message.subject == "[watcher] 500 alerts: edits (500)"
    assert message.html.count("<li") == 500
    assert all(f"(alert {n})" in message.markdown for n in range(1, 501))


# ----------------------------------------------------------------------------- email


def test_email_has_subject_text_and_html_with_marks_and_escaping(
    store: Store, smtp: SmtpReceiver
) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: "{smtp.url()}"'), store, clock)
    record_alerts(store, clock, 1)
    run(box)
    (message,) = smtp.messages
    assert message["subject"] == "[watcher] edits: Story 1"
    assert message["to"] == "desk@example.org"
    body = parts(message)
    assert "<del" in body["text/html"] and "<ins" in body["text/html"]
    assert "[-12-]" in body["text/plain"] and "{+15+}" in body["text/plain"]
    assert "https://news.example.org/story-1" in body["text/plain"]
    assert "Numbers changed" in body["text/html"]


def test_email_backlog_is_not_throttled(store: Store, smtp: SmtpReceiver) -> None:
    """apprise's email plugin sleeps 5.5 s between sends on one object unless told not to."""
    clock = Clock()
    box = outbox(make_config(f'desk: "{smtp.url()}"'), store, clock)
    (target,) = box.notifiers["desk"].targets
    assert [plugin.request_rate_per_sec for plugin in target.service] == [0]
    record_alerts(store, clock, 4)
    run(box)
    assert len(smtp.messages) == 4


def test_smtp_down_then_up(store: Store, smtp: SmtpReceiver) -> None:
    clock = Clock()
    box = outbox(make_config(f'desk: "{smtp.url()}"'), store, clock)
    record_alerts(store, clock, 2)
    smtp.stop()
    run(box)
    assert states(store) == ["retrying", "retrying"]
    smtp.start()
    clock.advance(hours=1)
    run(box)
    assert sorted(m["subject"] for m in smtp.messages) == [
        "[watcher] edits: Story 1",
        "[watcher] edits: Story 2",
    ]


# ------------------------------------------------------------------------- routing


def test_default_route_for_rules_that_name_no_notifier(store: Store, hook: Webhook) -> None:
    clock = Clock()
    config = make_config(
        f'desk: "{hook.url}"',
        rules="- {name: quiet, events: [changed]}",
        delivery=", default: [desk]",
    )
    box = outbox(config, store, clock)
    record_alerts(store, clock, 1, rule="quiet")
    run(box)
    assert hook.titles() == ["[watcher] quiet: Story 1"]


def test_alert_without_any_route_is_recorded_not_sent(store: Store, hook: Webhook) -> None:
    clock = Clock()
    config = make_config(f'desk: "{hook.url}"', rules="- {name: quiet, events: [changed]}")
    box = outbox(config, store, clock)
    record_alerts(store, clock, 1, rule="quiet")
    assert run(box).routed == 1
    (alert,) = store.alerts()
    assert alert.delivery_state == "routed" and alert.deliveries == () and not alert.delivered
    assert hook.received == []


def test_user_templates_override_the_built_in_ones(
    store: Store, hook: Webhook, tmp_path: Path
) -> None:
    (tmp_path / "alert_subject.txt.j2").write_text("EDIT {{ a.title }} #{{ a.version }}")
    clock = Clock()
    config = make_config(f'desk: "{hook.url}"', delivery=f', templates: "{tmp_path}"')
    box = outbox(config, store, clock)
    record_alerts(store, clock, 1)
    run(box)
    assert hook.titles() == ["EDIT Story 1 #1"]


def test_console_notifier_writes_to_the_terminal(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    box = outbox(make_config('desk: "console://"'), store, clock)
    record_alerts(store, clock, 1)
    assert run(box).sent == 1
    out = capsys.readouterr().out
    assert "[watcher] edits: Story 1" in out and "[-12-]{+15+}" in out
