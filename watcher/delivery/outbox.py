"""The outbox: recorded alerts → messages → apprise, with retries, digests and rate limits.

Every alert row is an outbox entry. :meth:`Outbox.dispatch` routes new alerts to their
notifiers (one delivery row each), then, notifier by notifier, sends what is due and records
each delivery's fate in one transaction right after the send:

- **sent** when every service of the notifier has the alert; a service that took it is
  remembered on the row, so a retry goes only to the services that failed — a working one
  never gets the same alert twice;
- **retrying** after a failure: the next try waits ``retry.first``, doubling up to
  ``retry.max``, with jitter so a recovering server is not hit by every alert at once;
- **gave_up** once the alert is ``retry.give_up_after`` old: logged as an error and shown by
  ``watcher alerts``.

Guarantee: at least once per service. A crash after a service accepted a message and before
its outcome is committed makes that message go to that service again after the restart; the
window is one database commit after the slowest service of that message answered, and at
most PARALLEL_SENDS messages per notifier are in that window at once.

apprise facts designed around: ``notify()`` returns an ``AppriseResult`` whose ``bool()`` is
true only when every service succeeded, so each service gets its own one-service Apprise
object and is judged alone; the email plugin sleeps 5.5 s between sends on one object
(``request_rate_per_sec``), which is set to 0 here or a backlog would crawl.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watcher import metrics
from watcher.clock import utc_now
from watcher.config.models import Config, RetrySettings
from watcher.delivery.livedigest import MessageKey, hold_live, message_key, version_key
from watcher.delivery.notifiers import Notifier, Target, build_notifiers, delivery_setup
from watcher.delivery.render import Message, Renderer, test_message
from watcher.records import DeliveryOutcome, PendingDelivery

if TYPE_CHECKING:  # the store is handed in: validate and notify-test need no database
    from watcher.storage.store import Store

log = logging.getLogger(__name__)

# Deliveries read per notifier and round; a digest takes up to DIGEST_MAX alerts at once.
BATCH = 200
DIGEST_MAX = 1000
# Messages in flight at once to one notifier: a send mostly waits on the network, so a few
# overlap; this many are what a crash can repeat (README: the delivery guarantee).
PARALLEL_SENDS = 4
# A notifier removed from the config keeps its deliveries; they are looked at again after this.
ORPHAN_RECHECK = timedelta(hours=1)


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class SendResult:
    target: Target
    ok: bool
    error: str | None = None


async def send(target: Target, message: Message, timeout: float) -> SendResult:
    """Hand one message to one service; every failure becomes a result, never an exception."""
    try:
        result = await asyncio.wait_for(
            target.service.async_notify(
                body=message.body(target.body_format),
                title=message.subject,
                body_format=target.body_format,
                timeout=timeout,
                log_level=logging.WARNING,
            ),
            timeout + 5,
        )
    except TimeoutError:
        return SendResult(target, False, f"no answer within {timeout:.0f} s")
    except Exception as exc:  # a plugin bug must not stop the dispatcher
        return SendResult(target, False, f"{type(exc).__name__}: {exc}")
    if result:
        return SendResult(target, True)
    said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    return SendResult(target, False, "; ".join(said[-2:]) or f"apprise: {result.status.name}")


async def send_test(config: Config, name: str, now: datetime) -> list[SendResult]:
    """Send a test message to every service of one notifier (``watcher notify-test``)."""
    notifier = build_notifiers(config, [name])[name]
    message = test_message(name, now)
    timeout = config.delivery.timeout.total_seconds()
    return list(await asyncio.gather(*(send(t, message, timeout) for t in notifier.targets)))


# ---------------------------------------------------------------------------- dispatch


@dataclass
class DispatchSummary:
    routed: int = 0
    messages: int = 0
    sent: int = 0
    retrying: int = 0
    gave_up: int = 0
    waiting: int = 0  # held for a digest window or a rate limit
    full_batches: int = 0  # notifiers that had more than one round's worth
    # Notifiers no longer in the config that alerts still wait for (counted in `waiting`).
    orphaned: tuple[str, ...] = ()

    def add(self, other: DispatchSummary) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Outbox:
    config: Config
    store: Store
    notifiers: dict[str, Notifier]
    renderer: Renderer
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def build(cls, config: Config, store: Store, clock: Callable[[], datetime]) -> Outbox:
        notifiers, renderer = delivery_setup(config, clock())
        return cls(config, store, notifiers, renderer, clock)

    def mask(self, text: str) -> str:
        return self.config.mask(text)

    async def dispatch(self, *, batch: int = BATCH) -> DispatchSummary:
        """One round: route new alerts, then send what is due, notifiers in parallel."""
        now = self.clock()
        summary = DispatchSummary(
            routed=self.store.route_new_alerts(self.config.notifiers_for, now)
        )
        names = self.store.due_notifiers(now)
        for part in await asyncio.gather(*(self._notifier_round(n, now, batch) for n in names)):
            summary.add(part)
        return summary

    async def drain(self, *, rounds: int = 1000) -> DispatchSummary:
        """Rounds until nothing due is left (``watcher check`` ends with this)."""
        total = DispatchSummary()
        for _ in range(rounds):
            summary = await self.dispatch()
            total.add(summary)
            if not summary.full_batches:
                break
        return total

    # ------------------------------------------------------------ one notifier

    async def _notifier_round(self, name: str, now: datetime, batch: int) -> DispatchSummary:
        notifier = self.notifiers.get(name)
        if notifier is None:
            return self._hold_orphans(name, now, batch)
        waiting = self.store.waiting_deliveries(
            name,
            due_by=None if notifier.digest else now,
            limit=DIGEST_MAX if notifier.digest else batch,
        )
        full = len(waiting) >= batch and not notifier.digest
        held = 0
        if not notifier.digest:  # a live page's alerts wait for its digest
            waiting, holds = hold_live(waiting, now, self.config.live_pages.digest)
            for until, ids in holds.items():
                self.store.defer_deliveries(ids, until)
                held += len(ids)
        if not waiting:
            return DispatchSummary(waiting=held, full_batches=int(full))
        # Read once: both when to send and how many messages may go depend on it.
        limit = notifier.rate_limit
        recent = self.store.messages_sent_since(name, now - limit.period) if limit else []
        hold_until = self._hold_until(notifier, waiting, recent, now)
        if hold_until is not None:
            self.store.defer_deliveries([d.id for d in waiting], hold_until)
            return DispatchSummary(waiting=len(waiting))
        summary = DispatchSummary(waiting=held, full_batches=int(full))
        groups = self._messages(notifier, waiting, len(recent))
        for start in range(0, len(groups), PARALLEL_SENDS):
            window = groups[start : start + PARALLEL_SENDS]
            sent = await asyncio.gather(*(self._send_group(notifier, g) for g in window))
            for part, _ in sent:
                summary.add(part)
            retries = [retry_at for _, retry_at in sent]
            if all(retries):
                # Nothing got through: the service is down. The rest wait for the same retry
                # instead of each waiting out its own timeout now (no attempt is spent).
                rest = [d.id for later in groups[start + PARALLEL_SENDS :] for d in later]
                self.store.defer_deliveries(rest, min(r for r in retries if r is not None))
                summary.waiting += len(rest)
                summary.full_batches = 0
                break
        return summary

    def _hold_orphans(self, name: str, now: datetime, batch: int) -> DispatchSummary:
        waiting = self.store.waiting_deliveries(name, due_by=now, limit=batch)
        log.warning(
            "notifier %s is no longer in the config: %d alerts wait for it (add it back to "
            "send them, or `watcher outbox drop --notifier %s`)",
            name,
            len(waiting),
            name,
        )
        self.store.defer_deliveries([d.id for d in waiting], now + ORPHAN_RECHECK)
        return DispatchSummary(waiting=len(waiting), orphaned=(name,) if waiting else ())

    @staticmethod
    def _hold_until(
        notifier: Notifier, waiting: list[PendingDelivery], recent: list[datetime], now: datetime
    ) -> datetime | None:
        """When the waiting alerts may go, if not now: the digest window is still open, or
        the rate limit has no message left in its period (``recent``: its sends, oldest
        first)."""
        if notifier.digest:
            retries = [d.next_try_at for d in waiting if d.state == "retrying" and d.next_try_at]
            # A digest that failed goes again when its retry is due, window or not.
            ready = (
                min(retries) if retries else min(d.created_at for d in waiting) + notifier.digest
            )
            if ready > now:
                return ready
        limit = notifier.rate_limit
        if limit is not None and len(recent) >= limit.count:
            return recent[len(recent) - limit.count] + limit.period
        return None

    @staticmethod
    def _messages(
        notifier: Notifier, waiting: list[PendingDelivery], recently_sent: int
    ) -> list[list[PendingDelivery]]:
        """How the waiting alerts become messages: all in one digest, one each, or — when a
        rate limit has fewer messages left than alerts wait — one each for all but the last
        message, which carries the overflow as a digest. Nothing is dropped."""
        if notifier.digest:
            return [waiting]
        singles = per_version(waiting)
        limit = notifier.rate_limit
        if limit is None:
            return singles
        left = limit.count - recently_sent
        if len(singles) <= left:
            return singles
        kept = max(left - 1, 0)
        return [*singles[:kept], [d for group in singles[kept:] for d in group]]

    async def _send_group(
        self, notifier: Notifier, group: list[PendingDelivery]
    ) -> tuple[DispatchSummary, datetime | None]:
        """One message to every service of the notifier that does not have it yet, then one
        transaction recording what happened. The second value is when to try again if no
        service took it at all (None otherwise)."""
        timeout = self.config.delivery.timeout.total_seconds()
        jobs = []
        for target in notifier.targets:
            missing = [d for d in group if target.key not in d.done_targets]
            if missing:
                jobs.append(send(target, self._render(missing), timeout))
        results = await asyncio.gather(*jobs)
        now = self.clock()
        outcomes = [self._outcome(notifier, d, results, now) for d in group]
        took = any(r.ok for r in results)
        self.store.record_deliveries(notifier.name, outcomes, sent_at=now if took else None)
        retries = [o.next_try_at for o in outcomes if o.next_try_at is not None]
        retry_at = min(retries) if results and not took and retries else None
        return self._log_round(notifier, group, results, outcomes), retry_at

    def _render(self, deliveries: list[PendingDelivery]) -> Message:
        first, *others = [d.alert for d in deliveries]
        if all(version_key(alert) == version_key(first) for alert in others):
            return self.renderer.alert(first, *others)
        return self.renderer.digest([first, *others])

    def _outcome(
        self,
        notifier: Notifier,
        delivery: PendingDelivery,
        results: Sequence[SendResult],
        now: datetime,
    ) -> DeliveryOutcome:
        done = delivery.done_targets | {r.target.key for r in results if r.ok}
        if notifier.keys <= done:
            return DeliveryOutcome(
                delivery.id, "sent", delivery.attempts + 1, now, None, None, done
            )
        errors = [f"{r.target.label}: {r.error}" for r in results if not r.ok]
        error = self.mask("; ".join(errors))[:2000]
        attempts = delivery.attempts + 1
        retry = self.config.delivery.retry
        if now - delivery.created_at >= retry.give_up_after:
            return DeliveryOutcome(delivery.id, "gave_up", attempts, now, None, error, done)
        next_try = now + backoff(attempts, retry)
        return DeliveryOutcome(delivery.id, "retrying", attempts, now, next_try, error, done)

    def _log_round(
        self,
        notifier: Notifier,
        group: list[PendingDelivery],
        results: Sequence[SendResult],
        outcomes: Sequence[DeliveryOutcome],
    ) -> DispatchSummary:
        summary = DispatchSummary(messages=1)
        ids = ", ".join(str(d.alert.id) for d in group)
        single = len({version_key(d.alert) for d in group}) == 1
        kind = f"alert {ids}" if single else f"digest of {len(group)} alerts"
        for result in results:
            if not result.ok:
                log.warning(
                    "notifier %s: %s not sent to %s: %s",
                    notifier.name,
                    kind,
                    result.target.label,
                    self.mask(result.error or ""),
                )
        for outcome in outcomes:
            metrics.delivery_done(notifier.name, outcome.state)
            if outcome.state == "sent":
                summary.sent += 1
            elif outcome.state == "retrying":
                summary.retrying += 1
            else:
                summary.gave_up += 1
                log.error(
                    "notifier %s: gave up on alert after %d attempts: %s",
                    notifier.name,
                    outcome.attempts,
                    outcome.last_error,
                )
        if summary.sent:
            log.info("notifier %s: %s sent", notifier.name, kind)
        return summary


def per_version(waiting: list[PendingDelivery]) -> list[list[PendingDelivery]]:
    """The waiting deliveries as messages: one per article version, naming every rule that
    matched it (an edit matching two rules is one message to a notifier, not two); a live
    page's, one digest per article."""
    groups: dict[MessageKey, list[PendingDelivery]] = {}
    for delivery in waiting:
        groups.setdefault(message_key(delivery.alert), []).append(delivery)
    return list(groups.values())


def backoff(attempts: int, retry: RetrySettings) -> timedelta:
    """The wait after the ``attempts``-th failure: ``first`` doubling to ``max``, ±25% jitter
    (kept within [first, max]) so alerts queued during an outage do not retry in lockstep."""
    base = retry.first * (1 << min(attempts - 1, 30))
    jittered = base * random.uniform(0.75, 1.25)
    return max(retry.first, min(retry.max, jittered))
