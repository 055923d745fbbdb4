"""An alert (or a batch of them) → a message: subject, plain text, HTML and Markdown.

Messages come from Jinja2 templates: the built-in ones in ``watcher/templates`` and, taking
precedence file by file, the user's in ``delivery.templates`` (else ``templates/`` beside the
config). Everything taken from an article is escaped in HTML (autoescape) and in Markdown
(the ``md`` filter). Email gets the HTML body with inline styles only, because Gmail and
others drop ``<style>`` blocks and classes; chat services get Markdown; the rest plain text.

A user template that fails on one alert does not lose the alert: the built-in template
renders it instead and the failure is logged.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from watcher.config.models import HEALTH_RULE
from watcher.delivery.links import alert_url
from watcher.errors import ConfigError
from watcher.records import AlertRecord

log = logging.getLogger(__name__)

FORMATS = ("text", "html", "markdown")
_BODY_TEMPLATES = {"text": "{kind}.txt.j2", "html": "{kind}.html.j2", "markdown": "{kind}.md.j2"}
SUBJECT_CHARS = 160
# Marks that survive apprise's HTML → text conversion (which drops <del>/<ins>) but that
# mail clients do not show: the text part then reads like `watcher diff`.
_HIDDEN = '<span style="display:none;mso-hide:all">{}</span>'
_DEL_STYLE = "background:#fde2e2;color:#8a1010;text-decoration:line-through"
_INS_STYLE = "background:#dcf5dc;color:#0a5c0a;text-decoration:none"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~|#])")
_EVENT_LABELS = {
    "new": "new",
    "changed": "edited",
    "removed": "taken down",
    "restored": "restored",
    "unhealthy": "feed unhealthy",
    "recovered": "feed recovered",
}


@dataclass(frozen=True)
class Message:
    """A subject and its bodies, each rendered when first asked for: a webhook needs only
    Markdown, so rendering HTML and text too would triple the cost of every alert."""

    subject: str
    render: Callable[[str], str]  # body format → body
    _bodies: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def fixed(cls, subject: str, text: str, html: str, markdown: str) -> Message:
        bodies = {"text": text, "html": html, "markdown": markdown}
        return cls(subject, bodies.__getitem__)

    def body(self, body_format: str) -> str:
        if body_format not in self._bodies:
            self._bodies[body_format] = self.render(body_format)
        return self._bodies[body_format]

    @property
    def text(self) -> str:
        return self.body("text")

    @property
    def html(self) -> str:
        return self.body("html")

    @property
    def markdown(self) -> str:
        return self.body("markdown")


class Renderer:
    """Renders alerts and digests; built once per process (templates are compiled once)."""

    def __init__(self, templates_dir: Path | None = None, base_url: str | None = None) -> None:
        self.user_dir = templates_dir
        self.base_url = base_url  # the web view's address: messages link to their diff
        self._builtin = _environment(None)
        self._env = _environment(templates_dir) if templates_dir else self._builtin

    def check(self, sample: AlertRecord) -> None:
        """Render a sample through every template, so a broken user template stops start-up
        (and ``watcher validate``) with its file and line instead of failing at 3 a.m."""
        if self.user_dir is None:
            return
        health = sample_health_alert(sample.created_at)
        for kind, context in (
            ("alert", _alert_context(sample, self.base_url)),
            ("health", _alert_context(health, self.base_url)),
            ("digest", _digest([sample, health], self.base_url)),
        ):
            for name in _template_names(kind):
                try:
                    self._env.get_template(name).render(context)
                except jinja2.TemplateSyntaxError as exc:
                    where = exc.filename or str(self.user_dir / name)
                    problem = exc.message or "syntax error"
                    raise ConfigError(problem, file=where, line=exc.lineno) from None
                except jinja2.TemplateError as exc:
                    raise ConfigError(
                        f"fails on a sample alert: {exc}", file=str(self.user_dir / name)
                    ) from None

    def alert(self, alert: AlertRecord, *same_version: AlertRecord) -> Message:
        """One alert's message; with ``same_version`` (alerts of other rules on the same
        version), one message naming every rule that matched."""
        kind = "health" if alert.rule == HEALTH_RULE else "alert"
        context = _alert_context(alert, self.base_url)
        if same_version:
            others = [alert_view(a, self.base_url) for a in same_version]
            context["a"] = merged_view(context["a"], others)
        return self._render(kind, context)

    def digest(self, alerts: Sequence[AlertRecord]) -> Message:
        return self._render("digest", _digest(alerts, self.base_url))

    def _render(self, kind: str, context: dict[str, Any]) -> Message:
        subject = self._rendered(f"{kind}_subject.txt.j2", context)
        subject = " ".join(subject.split())
        if len(subject) > SUBJECT_CHARS:
            subject = subject[: SUBJECT_CHARS - 1].rstrip() + "…"

        def body(body_format: str) -> str:
            name = _BODY_TEMPLATES[body_format].format(kind=kind)
            return self._rendered(name, context).strip() + "\n"

        return Message(subject, body)

    def _rendered(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except jinja2.TemplateError as exc:
            if self._env is self._builtin:
                raise
            log.error(
                "template %s in %s failed (%s); using the built-in one", name, self.user_dir, exc
            )
            return self._builtin.get_template(name).render(context)


def sample_alert(now: datetime) -> AlertRecord:
    """An edit with every kind of detail, to try templates on before a real alert needs them."""
    hunk = {"before": "at least", "removed": "12", "added": "15", "after": "people were killed"}
    detail = {
        "reasons": ["keyword cease-fire in added text"],
        "added": ["15 people"],
        "removed": ["12 people"],
        "words_added": 2,
        "words_removed": 2,
        "headline_changed": True,
        "old_title": "Cease-fire holds <sample>",
        "numbers": {"removed": ["12"], "added": ["15"]},
        "quotes": {"removed": ["We will hold"], "added": ["We may hold"]},
        "hunks": [hunk],
        "hunks_total": 3,
        "previous": {"version": 1, "fetched_at": now.isoformat()},
        "classes": ["substance", "headline"],
    }
    return AlertRecord(
        id=0,
        rule="sample",
        event="changed",
        feed="sample-feed",
        url="https://news.example.org/story",
        title="Cease-fire & truce <sample>",
        version=2,
        created_at=now,
        matched=("cease-fire",),
        detail=detail,
        delivery_state="routed",
        delivered_at=None,
        article_id=0,
    )


def sample_health_alert(now: datetime) -> AlertRecord:
    detail = {
        "problem": "errors",
        "reason": "5 failed polls in a row; last: HTTP 503",
        "url": "https://news.example.org/feed.xml",
        "title": "Feed sample-feed unhealthy",
    }
    return AlertRecord(
        id=0,
        rule=HEALTH_RULE,
        event="unhealthy",
        feed="sample-feed",
        url=detail["url"],
        title=detail["title"],
        version=0,
        created_at=now,
        matched=(),
        detail=detail,
        delivery_state="routed",
        delivered_at=None,
        article_id=0,
    )


def test_message(notifier: str, now: datetime) -> Message:
    """What ``watcher notify-test`` sends: proof the route works, in every format."""
    text = (
        f"This is a test message from watcher to the notifier {notifier!r}, sent "
        f"{format_when(now)}. If you can read it, alerts will reach you here."
    )
    return Message.fixed(
        f"[watcher] test message for {notifier}",
        text + "\n",
        f"<p>{escape(text)}</p>\n",
        escape_markdown(text) + "\n",
    )


def _template_names(kind: str) -> list[str]:
    return [f"{kind}_subject.txt.j2"] + [t.format(kind=kind) for t in _BODY_TEMPLATES.values()]


def _environment(user_dir: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("watcher.delivery", "templates")]
    if user_dir is not None:
        loaders.insert(0, jinja2.FileSystemLoader(str(user_dir)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(when=format_when, md=escape_markdown, mdurl=_markdown_url, href=safe_link)
    env.globals.update(removed=_marked("del", _DEL_STYLE, "[-", "-]"))
    env.globals.update(added=_marked("ins", _INS_STYLE, "{+", "+}"))
    return env


def _marked(tag: str, style: str, opening: str, closing: str) -> Callable[[str], Markup]:
    def mark(text: str) -> Markup:
        hidden_open, hidden_close = (Markup(_HIDDEN.format(m)) for m in (opening, closing))
        return Markup(f'<{tag} style="{style}">{hidden_open}{escape(text)}{hidden_close}</{tag}>')

    return mark


def format_when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def escape_markdown(text: object) -> str:
    """Article text must not turn into markup (or links) in a chat message."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def _markdown_url(url: str) -> str:
    # A URL inside (...) ends at the first unbalanced ")" or space: encode both.
    return safe_link(url).replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def safe_link(url: str) -> str:
    """Only http(s) links are made clickable: a feed may carry ``javascript:`` or ``data:``."""
    return url if url.lower().startswith(("http://", "https://")) else "#"


# ---------------------------------------------------------------------------- contexts


def _alert_context(alert: AlertRecord, base_url: str | None) -> dict[str, Any]:
    return {"a": alert_view(alert, base_url)}


def alert_view(alert: AlertRecord, base_url: str | None = None) -> dict[str, Any]:
    """What a template sees of one alert: plain values, no further queries needed."""
    detail = alert.detail
    numbers = detail.get("numbers") or {}
    quotes = detail.get("quotes") or {}
    previous = detail.get("previous") or {}
    shown = [_spaced(hunk) for hunk in detail.get("hunks") or []]
    previous_number = previous.get("version")
    view: dict[str, Any] = {
        "id": alert.id,
        "rule": alert.rule,
        "event": alert.event,
        "feed": alert.feed,
        "url": alert.url,
        "title": alert.title or alert.url,
        "old_title": detail.get("old_title", ""),
        "headline_changed": bool(detail.get("headline_changed")),
        "version": alert.version,
        "created_at": alert.created_at,
        "previous_version": previous_number,
        "previous_fetched_at": _parse_time(previous.get("fetched_at")),
        "matched": list(alert.matched),
        # What kind of edit, strongest first (watcher.pipeline.classes); [] for a new article.
        "classes": list(detail.get("classes", [])),
        "reasons": list(detail.get("reasons", [])),
        "words_added": detail.get("words_added", 0),
        "words_removed": detail.get("words_removed", 0),
        "numbers_removed": list(numbers.get("removed", [])),
        "numbers_added": list(numbers.get("added", [])),
        "quotes_removed": list(quotes.get("removed", [])),
        "quotes_added": list(quotes.get("added", [])),
        "hunks": shown,
        "more_hunks": max(int(detail.get("hunks_total", len(shown))) - len(shown), 0),
        # A removed article's excerpt is of the text taken down.
        "excerpt": _without_headline(
            (detail.get("added") or detail.get("removed") or [""])[0], alert.title
        ),
        "diff_command": _diff_command(alert.url, previous_number, alert.version),
        # The web view's page for it (None unless web.base_url is set): a phone can open it.
        "diff_url": alert_url(base_url, alert),
    }
    view["rules"], view["rule_label"], view["ids"] = [alert.rule], "rule", [alert.id]
    view["event_label"] = _EVENT_LABELS.get(alert.event, alert.event)
    view["problem"] = detail.get("problem", "")
    view["reason"] = detail.get("reason", "")
    view["went_back"] = went_back(view["classes"], alert.version, previous_number)
    view["summary"] = summary_line(view)
    return view


def went_back(classes: Sequence[str], version: int, previous: int | None) -> str:
    """What a revert or a flip-flop means, in a sentence ("" for any other change)."""
    if "flip-flop" in classes:
        return (
            f"The page keeps alternating between texts it has shown (now version {version} "
            "again; an A/B test?). Said once: no further alert until it shows a new text."
        )
    if "revert" in classes:
        replaced = f" after version {previous} replaced it" if previous is not None else ""
        return f"The page went back to version {version}{replaced}: the edit was undone."
    return ""


# Context that starts with these follows the changed words without a space: "{+Saturday+},".
_NO_SPACE_BEFORE = tuple(",.;:!?)]}”’»…%")


def _spaced(hunk: dict[str, Any]) -> dict[str, Any]:
    """A hunk whose context carries no outer whitespace, with ``gap`` the text between the
    marks and the context after them: the excerpts are whitespace-folded when recorded, so a
    template joining ``before``, the marks and ``after`` with spaces doubled some and put
    others before a comma ("possible  [-pause-]", "{+Saturday+} ,")."""
    after = str(hunk.get("after", "")).lstrip()
    gap = "" if not after or after.startswith(_NO_SPACE_BEFORE) else " "
    before = str(hunk.get("before", "")).rstrip()
    # Alerts recorded before hunks said where they were have no "outside".
    outside = bool(hunk.get("outside"))
    return {**hunk, "before": before, "after": after, "gap": gap, "outside": outside}


def merged_view(first: dict[str, Any], others: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The view of one version that several rules matched: every rule named, every matched
    term and reason listed once; the change itself is the same for all."""
    views = [first, *others]
    rules = list(dict.fromkeys(v["rule"] for v in views))
    merged = {
        **first,
        "rules": rules,
        "rule": ", ".join(rules),
        "rule_label": "rules" if len(rules) > 1 else "rule",
        "ids": [v["id"] for v in views],
        "matched": list(dict.fromkeys(term for v in views for term in v["matched"])),
        "reasons": list(dict.fromkeys(reason for v in views for reason in v["reasons"])),
    }
    merged["summary"] = summary_line(merged)
    return merged


def summary_line(view: dict[str, Any]) -> str:
    """One line saying what an editor looks for first: headline, numbers, quotes, size."""
    if view["event"] in ("unhealthy", "recovered"):
        return str(view["reason"])
    if view["event"] in ("removed", "restored"):
        matched = f"; matched {', '.join(view['matched'])}" if view["matched"] else ""
        return f"{view['event_label']}: {view['reason']}{matched}"
    if view["event"] == "new":
        matched = f"matched {', '.join(view['matched'])}" if view["matched"] else "new article"
        return matched
    parts = [", ".join(view["classes"])] if view["classes"] else []
    if view["headline_changed"]:
        parts.append(f"headline was “{view['old_title']}”")
    if view["numbers_removed"] or view["numbers_added"]:
        removed = ", ".join(view["numbers_removed"]) or "—"
        added = ", ".join(view["numbers_added"]) or "—"
        parts.append(f"numbers {removed} → {added}")
    quotes = len(view["quotes_removed"]) + len(view["quotes_added"])
    if quotes:
        parts.append(f"{quotes} quotation{'s' if quotes > 1 else ''} changed")
    parts.append(f"+{view['words_added']}/-{view['words_removed']} words")
    if view["matched"]:
        parts.append(f"matched {', '.join(view['matched'])}")
    return "; ".join(parts)


def _without_headline(excerpt: str, title: str) -> str:
    """A new article's excerpt is its headline and text: the message shows the headline
    already ("Truce holds Truce holds A fragile truce…" read as a stutter)."""
    headline = " ".join(title.split())
    if headline and excerpt.casefold().startswith(headline.casefold()):
        return excerpt[len(headline) :].lstrip() or excerpt
    return excerpt


def _digest(alerts: Sequence[AlertRecord], base_url: str | None) -> dict[str, Any]:
    views = [alert_view(alert, base_url) for alert in alerts]
    by_rule = Counter(view["rule"] for view in views).most_common()
    # A live page's digest (all its alerts, one article): its headline now, else "".
    live = all(a.detail.get("live") for a in alerts) and len({a.article_id for a in alerts}) == 1
    return {"alerts": views, "by_rule": by_rule, "live_article": views[-1]["title"] if live else ""}


def _diff_command(url: str, previous: int | None, version: int) -> str:
    start = f" --from {previous}" if previous is not None else ""
    return f"watcher diff '{url}'{start} --to {version}"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
