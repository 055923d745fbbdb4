"""Alerts from a real pass to real receivers, through the ``watcher`` command as a user runs
it: an edited story reaches an SMTP server and a chat room; hostile article text arrives
escaped; secrets stay out of every output; a broken template or notifier is refused at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from support.newsroom import Newsroom, make_story
from support.receivers import SmtpReceiver, Webhook, parts
from support.server import LoopbackServer
from watcher.cli.commands import main

SECRET = "hunter2-very-secret"
HOSTILE = 'The envoy wrote <script>alert("owned")</script> & <b>bold</b> claims.'


@pytest.fixture
def room(loopback: LoopbackServer) -> Newsroom:
    newsroom = Newsroom(loopback).attach()
    newsroom.add(make_story("truce", "Truce talks resume in Geneva", seed=1))
    return newsroom


def write_config(tmp_path: Path, room: Newsroom, notifiers: str, extra: str = "") -> Path:
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
state_dir: state
allow_private_networks: true
defaults: {{recheck: [{{until: 7d, every: 1s}}]}}
feeds:
  - {{name: loop, url: "{room.url("/rss.xml")}"}}
notifiers:
{notifiers}
rules:
  - {{name: edits, events: [changed], notify: [desk]}}
{extra}
"""
    )
    return config


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["-c", str(config), "-v", *args], env={"SMTP_PASSWORD": SECRET}
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def edit_story(room: Newsroom) -> None:
    story = room.stories["truce"]
    room.edit(
        "truce",
        title="Truce collapses in Geneva",
        paragraphs=[
            story.paragraphs[0] + " At least 15 people were killed.",
            HOSTILE,
            *story.paragraphs[1:],
        ],
    )


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


def test_an_edit_arrives_by_email_with_text_html_and_escaping(
    room: Newsroom, smtp: SmtpReceiver, tmp_path: Path
) -> None:
    config = write_config(tmp_path, room, f'  desk: "{smtp.url()}"')
    assert run(config, "check")[0] == 0
    edit_story(room)
    code, out, err = run(config, "check", "--recheck-all")
    assert code == 0, err
    assert "alerts 1 delivered" in out
    (message,) = smtp.messages
    assert (
        message["subject"]
        == "[watcher] edits (substance, headline): Truce talks resume in Geneva → Truce "
        "collapses in Geneva"
    )
    body = parts(message)
    html, plain = body["text/html"], body["text/plain"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<del" in html and "<ins" in html
    assert "Headline changed" in html and "Numbers changed" in html
    assert "{+" in plain and "15" in plain and room.url("/news/truce.html") in plain
    assert "Edited article · <b>substance, headline</b>" in html
    code, out, _ = run(config, "alerts", "--json")
    (alert,) = [a for a in json.loads(out) if a["event"] == "changed"]
    assert alert["delivered"] is True
    assert alert["deliveries"][0]["state"] == "sent"
    assert alert["classes"] == ["substance", "headline"]
    assert "delivered" not in run(config, "check", "--recheck-all")[1]  # nothing sent twice
    assert len(smtp.messages) == 1


def test_secrets_never_show_when_delivery_fails(room: Newsroom, tmp_path: Path) -> None:
    with SmtpReceiver() as smtp:
        url = smtp.url().replace("mailto://", "mailto://watcher:${SMTP_PASSWORD}@")
        smtp.stop()  # connection refused: every send fails and is logged
        config = write_config(tmp_path, room, f'  desk: "{url}"')
        run(config, "check")
        edit_story(room)
        outputs = [run(config, "check", "--recheck-all"), run(config, "alerts")]
        outputs.append(run(config, "alerts", "--json"))
        outputs.append(run(config, "notify-test", "desk"))
        outputs.append(run(config, "feeds"))
        outputs.append(run(config, "validate"))
    for _code, out, err in outputs:
        assert SECRET not in out and SECRET not in err
    check_err = outputs[0][2]
    assert "not sent to mailto://" in check_err
    assert "retrying" in outputs[2][1]
    assert outputs[3][0] == 1 and "FAILED" in outputs[3][1]
    # Nor in what is stored: the delivery's last error is shown by `watcher alerts`.
    database = create_engine(f"sqlite:///{tmp_path / 'state' / 'watcher.db'}")
    with database.connect() as connection:
        errors = connection.execute(text("SELECT last_error FROM delivery")).scalars().all()
    database.dispose()
    assert errors and all(SECRET not in (e or "") for e in errors)


def test_notify_test_reports_each_service(room: Newsroom, tmp_path: Path) -> None:
    with Webhook() as up, Webhook() as down:
        down.status = 503
        config = write_config(tmp_path, room, f'  desk: ["{up.url}", "{down.url}"]')
        code, out, _ = run(config, "notify-test", "desk")
        assert code == 1
        lines = out.strip().splitlines()
        assert len(lines) == 2
        assert lines[0].endswith(": ok") and "FAILED" in lines[1] and "503" in lines[1]
        assert up.titles() == ["[watcher] test message for desk"]
        down.status = 200
        assert run(config, "notify-test", "desk")[0] == 0
        code, _, err = run(config, "notify-test", "nobody")
        assert code == 2 and "no notifier 'nobody'" in err


def test_a_broken_user_template_is_refused_with_its_file_and_line(
    room: Newsroom, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "alert.html.j2").write_text("<p>{{ a.title }}</p>\n<p>{% if %}</p>\n")
    config = write_config(tmp_path, room, '  desk: "json://127.0.0.1:9/x"')
    for command in ("validate", "check"):
        code, _, err = run(config, command)
        assert code == 2, err
        assert f"{templates / 'alert.html.j2'}:2:" in err
    (templates / "alert.html.j2").write_text("<p>{{ a.no_such_field }}</p>")
    code, _, err = run(config, "validate")
    assert code == 2 and "no_such_field" in err


def test_an_unusable_notifier_url_is_a_config_error(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room, '  desk: "nosuchservice://x/y"')
    code, _, err = run(config, "validate")
    assert code == 2
    assert "notifiers.desk.urls[0]: apprise cannot use this URL" in err
    assert err.count("\n") == 1  # one line, no apprise log noise


def test_apprise_config_file_with_tags(room: Newsroom, tmp_path: Path) -> None:
    with Webhook() as news, Webhook() as ops:
        (tmp_path / "apprise.yml").write_text(
            f"urls:\n  - {news.url}:\n      tag: news\n  - {ops.url}:\n      tag: ops\n"
        )
        config = write_config(tmp_path, room, "  desk: {apprise_config: apprise.yml, tags: [news]}")
        run(config, "check")
        edit_story(room)
        assert run(config, "check", "--recheck-all")[0] == 0
        assert len(news.received) == 1 and ops.received == []


def test_matrix_room_receives_the_alert(room: Newsroom, tmp_path: Path) -> None:
    from support.synapse import synapse_server

    with synapse_server(tmp_path / "synapse") as matrix:
        config = write_config(tmp_path, room, f'  desk: "{matrix.apprise_url}"')
        run(config, "check")
        edit_story(room)
        code, out, err = run(config, "check", "--recheck-all")
        assert code == 0 and "alerts 1 delivered" in out, err
        content = _wait_for(matrix, "Truce collapses in Geneva")
        assert "15" in content["body"]
        assert "<script>" not in content.get("formatted_body", "")
        html = content["formatted_body"]
        assert "<strong>Headline changed:</strong>" in html  # Markdown became HTML
        assert "<ol>" in html  # the changes are a list
        assert "&lt;script&gt;" in html or "<script>" not in content["body"]


def _wait_for(matrix: Any, needle: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for content in matrix.messages():
            if needle in str(content.get("body", "")):
                return dict(content)
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not in the room: {matrix.messages()!r}")
