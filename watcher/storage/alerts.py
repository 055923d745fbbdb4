"""The alert and outbox queries of :class:`watcher.storage.store.Store` (a mixin, for module size).

The alert row is the outbox entry: the dispatcher routes each new alert to its notifiers (one
``delivery`` row per notifier, in one transaction with the alert's ``routed`` mark), then
sends and records each delivery's fate. Rows never leave this module either: callers get
the dataclasses of :mod:`watcher.records`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, update
from sqlmodel import Session, col, select

from watcher.config.models import HEALTH_RULE
from watcher.records import (
    AlertRecord,
    DeliveryOutcome,
    FeedHealthFacts,
    HealthProblem,
    NewAlert,
    PendingDelivery,
)
from watcher.storage.engine import EngineSql
from watcher.storage.reads import alert_record, alert_select
from watcher.storage.schema import (
    AlertRow,
    ArticleFeedRow,
    ArticleRow,
    DeliveryRow,
    FeedHealthRow,
    FeedRow,
    SentMessageRow,
)
from watcher.storage.sqltext import record

_DELIVERY = DeliveryRow.__table__  # type: ignore[attr-defined]
_ALERT = AlertRow.__table__  # type: ignore[attr-defined]
_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]
_WAITING = ("pending", "retrying")
# The delivery's columns beside an alert's (labelled: the alert has a delivery_state too).
_DELIVERY_COLUMNS = ", ".join(f"delivery.{c.name} AS d_{c.name}" for c in _DELIVERY.c)
_WRITE_OUTCOME = (
    update(_DELIVERY)
    .where(_DELIVERY.c.id == bindparam("i"))
    .values(
        state=bindparam("state"),
        attempts=bindparam("attempts"),
        last_try_at=bindparam("tried"),
        next_try_at=bindparam("next"),
        last_error=bindparam("error"),
        sent_at=bindparam("sent"),
        done_targets=bindparam("done"),
    )
)

_INSERT_SENT = SentMessageRow.__table__.insert()  # type: ignore[attr-defined]


def _mark_delivered_statement() -> Any:
    """Stamp ``delivered_at`` on the alerts of the deliveries ``:ids`` whose every delivery is
    now sent. Built once: compiling it costs more than running it, once per message."""
    alert_ids = select(_DELIVERY.c.alert_id).where(
        _DELIVERY.c.id.in_(bindparam("ids", expanding=True))
    )
    unsent = select(_DELIVERY.c.id).where(
        _DELIVERY.c.alert_id == _ALERT.c.id, _DELIVERY.c.state != "sent"
    )
    latest = (
        select(func.max(_DELIVERY.c.sent_at))
        .where(_DELIVERY.c.alert_id == _ALERT.c.id)
        .scalar_subquery()
    )
    return (
        update(_ALERT)
        .where(_ALERT.c.id.in_(alert_ids), ~unsent.exists())
        .values(delivered_at=latest)
    )


_MARK_DELIVERED = _mark_delivered_statement()

Route = Callable[[str], Sequence[str]]  # rule name → notifier names


class AlertQueries:
    """Alerts and their deliveries. Mixed into Store, which supplies the sessions."""

    label: str

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --------------------------------------------------------------- reading

    # --------------------------------------------------------------- routing

    def route_new_alerts(self, route: Route, now: datetime, *, limit: int = 1000) -> int:
        """Give each new alert one delivery per notifier ``route`` names; returns how many
        alerts were routed. One transaction: an alert is routed wholly or not at all."""
        with self._transaction() as connection:
            new = connection.execute(
                select(_ALERT.c.id, _ALERT.c.rule, _ALERT.c.created_at)
                .where(_ALERT.c.delivery_state == "new")
                .order_by(_ALERT.c.id)
                .limit(limit)
            ).all()
            rows = [
                {
                    "alert_id": alert_id,
                    "notifier": notifier,
                    "state": "pending",
                    "attempts": 0,
                    "created_at": created_at,
                    "next_try_at": now,
                    "done_targets": "[]",
                }
                for alert_id, rule, created_at in new
                for notifier in dict.fromkeys(route(rule))
            ]
            if rows:
                connection.execute(_DELIVERY.insert(), rows)
            if new:
                connection.execute(
                    update(_ALERT)
                    .where(_ALERT.c.id.in_([alert_id for alert_id, _, _ in new]))
                    .values(delivery_state="routed")
                )
        return len(new)

    # ------------------------------------------------------------- the outbox

    def due_notifiers(self, now: datetime) -> list[str]:
        """Notifiers with at least one delivery due now."""
        with self._transaction() as connection:
            return list(
                connection.execute(
                    select(_DELIVERY.c.notifier)
                    .where(_DELIVERY.c.state.in_(_WAITING), _DELIVERY.c.next_try_at <= now)
                    .distinct()
                    .order_by(_DELIVERY.c.notifier)
                ).scalars()
            )

    def waiting_deliveries(
        self, notifier: str, *, due_by: datetime | None, limit: int
    ) -> list[PendingDelivery]:
        """A notifier's waiting deliveries, oldest first: only those due by ``due_by``, or
        all of them (a digest takes everything waiting) when it is None."""
        query = alert_select(_DELIVERY_COLUMNS, "JOIN delivery ON delivery.alert_id = alert.id")
        query.where("delivery.notifier = :notifier", notifier=notifier)
        query.where_in("delivery.state", _WAITING, "state")
        if due_by is not None:
            query.where("delivery.next_try_at <= :due_by", due_by=due_by)
        query.order, query.limit = "delivery.created_at, delivery.id", limit
        with self._transaction() as connection:
            rows = query.run(EngineSql(connection))
        return [_pending(row, alert_record(row, ())) for row in rows]

    def drop_deliveries(self, notifier: str, now: datetime) -> int:
        """Give up at once on every delivery still waiting for ``notifier`` (one nobody can
        receive: removed from the config, or gone for good); the alerts stay, marked. Returns
        how many were dropped."""
        with self._transaction() as connection:
            result = connection.execute(
                update(_DELIVERY)
                .where(_DELIVERY.c.notifier == notifier, _DELIVERY.c.state.in_(_WAITING))
                .values(
                    state="gave_up",
                    next_try_at=None,
                    last_try_at=now,
                    last_error="dropped by `watcher outbox drop`",
                )
            )
            return int(result.rowcount or 0)

    def defer_deliveries(self, ids: Collection[int], until: datetime) -> None:
        """Hold deliveries until ``until`` (a digest window or a rate limit), no attempt spent."""
        if ids:
            with self._transaction() as connection:
                connection.execute(
                    update(_DELIVERY).where(_DELIVERY.c.id.in_(list(ids))).values(next_try_at=until)
                )

    def record_deliveries(
        self, notifier: str, outcomes: Sequence[DeliveryOutcome], *, sent_at: datetime | None
    ) -> None:
        """Write what one message did, in one transaction; ``sent_at`` when any service took
        it (that is what a rate limit counts)."""
        if not outcomes:
            return
        with self._transaction() as connection:
            connection.execute(_WRITE_OUTCOME, [_outcome_params(o) for o in outcomes])
            if sent_at is not None:
                values = {"notifier": notifier, "sent_at": sent_at, "alerts": len(outcomes)}
                connection.execute(_INSERT_SENT, values)
            sent_ids = [o.id for o in outcomes if o.state == "sent"]
            if sent_ids:
                connection.execute(_MARK_DELIVERED, {"ids": sent_ids})

    def messages_sent_since(self, notifier: str, since: datetime) -> list[datetime]:
        """When the notifier's messages since ``since`` were sent, oldest first."""
        with self._session() as session:
            return list(
                session.exec(
                    select(SentMessageRow.sent_at)
                    .where(SentMessageRow.notifier == notifier, SentMessageRow.sent_at > since)
                    .order_by(col(SentMessageRow.sent_at))
                ).all()
            )

    # ----------------------------------------------------------- feed health

    def health_facts(self, checked_since: datetime) -> list[FeedHealthFacts]:
        """Per feed: its poll errors, its newest article, and how its articles' checks since
        ``checked_since`` went."""
        with self._transaction() as connection:
            newest = dict(
                connection.execute(
                    select(_ARTICLE_FEED.c.feed_id, func.max(_ARTICLE_FEED.c.first_seen)).group_by(
                        _ARTICLE_FEED.c.feed_id
                    )
                ).all()
            )
            checks = {
                feed_id: (int(checked), int(failing or 0))
                for feed_id, checked, failing in connection.execute(_checks_since(checked_since))
            }
            feeds = connection.execute(select(_FEED)).mappings().all()
        return [
            _health_facts(row, newest.get(row["id"]), checks.get(row["id"], (0, 0)))
            for row in feeds
        ]

    def health_problems(self) -> list[HealthProblem]:
        """The problems alerted and not yet healed."""
        with self._session() as session:
            rows = session.exec(select(FeedHealthRow).order_by(col(FeedHealthRow.feed))).all()
            return [HealthProblem(row.feed, row.problem, row.reason) for row in rows]

    def record_health(
        self,
        raised: Sequence[HealthProblem],
        healed: Sequence[HealthProblem],
        now: datetime,
        feed_urls: dict[str, str],
    ) -> None:
        """Remember new problems and forget healed ones, each with its alert, in one
        transaction: a problem is alerted once when it starts and once when it heals."""
        if not raised and not healed:
            return
        health = FeedHealthRow.__table__  # type: ignore[attr-defined]
        with self._transaction() as connection:
            for problem in raised:
                connection.execute(
                    health.insert().values(
                        feed=problem.feed, problem=problem.problem, since=now, reason=problem.reason
                    )
                )
            for problem in healed:
                connection.execute(
                    health.delete().where(
                        health.c.feed == problem.feed, health.c.problem == problem.problem
                    )
                )
            rows = [
                _health_alert(p, event, now, feed_urls.get(p.feed, ""))
                for event, problems in (("unhealthy", raised), ("recovered", healed))
                for p in problems
            ]
            connection.execute(_ALERT.insert(), rows)


# ---------------------------------------------------------------------------- helpers


def insert_alerts(
    connection: Connection,
    article_id: int,
    version_id: int | None,
    alerts: tuple[NewAlert, ...],
    created_at: datetime,
    occurrence: int = 0,
) -> None:
    """Insert alerts of one article's version in the caller's transaction (see
    ``AlertRow.occurrence`` for what tells apart alerts of one rule on one version)."""
    if not alerts:
        return
    connection.execute(
        _ALERT.insert(),
        [
            {
                "rule": alert.rule,
                "event": alert.event,
                "article_id": article_id,
                "version_id": version_id,
                "feed": alert.feed,
                "matched": json.dumps(list(alert.matched)),
                "detail": json.dumps(alert.detail),
                "created_at": created_at,
                "occurrence": occurrence,
                "delivery_state": "new",
            }
            for alert in alerts
        ],
    )


def _checks_since(since: datetime) -> Any:
    failing = func.sum(case((_ARTICLE.c.failures > 0, 1), else_=0))
    return (
        select(_ARTICLE_FEED.c.feed_id, func.count(), failing)
        .join(_ARTICLE, _ARTICLE.c.id == _ARTICLE_FEED.c.article_id)
        .where(_ARTICLE.c.last_checked >= since)
        .group_by(_ARTICLE_FEED.c.feed_id)
    )


def _health_facts(row: Any, newest: datetime | None, checks: tuple[int, int]) -> FeedHealthFacts:
    return FeedHealthFacts(
        feed=row["name"],
        url=row["url"],
        error_streak=row["error_streak"],
        last_error=row["last_error"],
        disabled=row["disabled_at"] is not None,
        last_success_at=row["last_success_at"],
        newest_article_at=newest,
        checked=checks[0],
        failing=checks[1],
    )


def _health_alert(problem: HealthProblem, event: str, now: datetime, url: str) -> dict[str, Any]:
    state = "unhealthy" if event == "unhealthy" else "recovered"
    detail = {
        "problem": problem.problem,
        "reason": problem.reason,
        "url": url,
        "title": f"Feed {problem.feed} {state}: {problem.reason}",
    }
    return {
        "rule": HEALTH_RULE,
        "event": event,
        "feed": problem.feed,
        "matched": "[]",
        "detail": json.dumps(detail),
        "created_at": now,
        "delivery_state": "new",
    }


def _outcome_params(outcome: DeliveryOutcome) -> dict[str, Any]:
    return {
        "i": outcome.id,
        "state": outcome.state,
        "attempts": outcome.attempts,
        "tried": outcome.tried_at,
        "next": outcome.next_try_at,
        "error": outcome.last_error,
        "sent": outcome.tried_at if outcome.state == "sent" else None,
        "done": json.dumps(sorted(outcome.done_targets)),
    }


def _pending(row: Mapping[Any, Any], alert: AlertRecord) -> PendingDelivery:
    """A waiting delivery from a row of the alert query with the delivery's columns (labelled
    ``d_``: the alert has a ``delivery_state`` of its own)."""
    delivery = {key[2:]: value for key, value in row.items() if key.startswith("d_")}
    done = frozenset(json.loads(delivery["done_targets"]))
    return record(PendingDelivery, delivery, done_targets=done, alert=alert)
