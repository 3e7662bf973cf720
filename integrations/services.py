"""Writes for integrations: create notifications, deliver them, retry them.

A message moves pending → sending → delivered | failed (sending → pending again for a retry). A
worker claims it on a locked row before any network call, so two tasks for one message (a sweep and
a countdown, a redelivered task) send it once; the network call runs outside any transaction.
Retries: a short countdown task first, the beat sweep (`retry_due_messages`) as the safety net.
"""

from __future__ import annotations

import logging
import random
import traceback
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from config import outbound
from config.celery_utils import enqueue_on_commit
from config.errors import InvalidInput
from integrations import adapters
from integrations import metrics as integration_metrics
from integrations.models import TEST_EVENT, DeliveryAttempt, Integration, MessageStatus, OutboundMessage
from integrations.selectors import subscribed_integrations

logger = logging.getLogger(__name__)

DELIVER_TASK = "integrations.deliver_message"
DEDUP_KEY_MAX_CHARS = OutboundMessage._meta.get_field("dedup_key").max_length
# A countdown task fires at or after the time it was scheduled for; a small allowance absorbs clock
# differences between worker hosts, beyond which an early task leaves the message to a later one.
EARLY_ALLOWANCE = timedelta(seconds=1)
ABANDONED_ATTEMPT_ERROR = "The worker stopped before this attempt finished; no result was recorded."


def notify(event: str, payload: dict, *, dedup_key: str) -> list[OutboundMessage]:
    """One message per active integration subscribed to `event`; delivery is queued after commit.

    Idempotent per (integration, dedup_key): calling again with the same key returns the existing
    messages and creates and sends nothing new, so include the event in the key
    (e.g. "incident:42:exhausted"). An integration added since the first call gets its message.
    Safe inside the caller's transaction: nothing is sent if that transaction rolls back.
    """
    if not event or not dedup_key:
        raise InvalidInput("A notification needs an event and a dedup_key.")
    if len(dedup_key) > DEDUP_KEY_MAX_CHARS:
        raise InvalidInput(f"dedup_key is longer than {DEDUP_KEY_MAX_CHARS} characters.")
    messages = []
    with transaction.atomic():
        for integration in subscribed_integrations(event):
            message, created = OutboundMessage.objects.get_or_create(
                integration=integration,
                dedup_key=dedup_key,
                defaults={"event": event, "payload": payload, "next_attempt_at": timezone.now()},
            )
            if created:
                enqueue_on_commit(DELIVER_TASK, message.pk)
            messages.append(message)
    return messages


def send_test_notification(integration: Integration) -> OutboundMessage:
    """A sample message to one integration (the admin's "send a test notification"), even inactive."""
    payload = {
        "summary": f"Test notification for {integration.name}",
        "severity": "info",
        "state": "test",
        "reason": "Sent from the admin to check that this integration works.",
    }
    with transaction.atomic():
        message = OutboundMessage.objects.create(
            integration=integration,
            event=TEST_EVENT,
            dedup_key=f"test:{uuid.uuid4().hex}",
            payload=payload,
            next_attempt_at=timezone.now(),
        )
        enqueue_on_commit(DELIVER_TASK, message.pk)
    return message


def deliver(message_id: int) -> OutboundMessage:
    """Sends one message once: claim, send (outside the transaction), record, then decide.

    A message that is delivered, failed, being sent by another worker, or not yet due is returned
    untouched, so a duplicate or early task is harmless. Raises OutboundMessage.DoesNotExist.
    """
    claim = _claim(message_id)
    if claim is None:
        return OutboundMessage.objects.select_related("integration").get(pk=message_id)
    message, attempt = claim
    try:
        sent = adapters.send(message)
    except adapters.DeliveryError as exc:
        return _finish(message, attempt, error=exc)
    except Exception as exc:  # a bug or an unexpected library error: recorded and retried, never lost
        # Logged without exc_info: a library's message or traceback may repeat the secret URL.
        trace = outbound.scrub("".join(traceback.format_exception(exc)), message.integration.target)
        logger.error("integration adapter crashed", extra={"message_id": message.pk, "traceback": trace})
        return _finish(message, attempt, error=adapters.DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False))
    return _finish(message, attempt, sent=sent)


def retry_due_messages(limit: int = 100) -> int:
    """The beat sweep: re-queues due pending messages and ones stuck in sending; returns how many.

    Pending messages are taken only some seconds after they fell due, so the countdown task that
    normally handles them is not doubled. Rows locked by another sweep are skipped, not waited for.
    """
    now = timezone.now()
    due_before = now - timedelta(seconds=float(getattr(settings, "INTEGRATION_SWEEP_GRACE_SECONDS", 30.0)))
    stale_before = now - _stale_after()
    queued = 0
    with transaction.atomic():
        candidates = (
            OutboundMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("integration")
            .filter(
                Q(status=MessageStatus.PENDING, next_attempt_at__lte=due_before)
                | Q(status=MessageStatus.PENDING, next_attempt_at__isnull=True)
                | Q(status=MessageStatus.SENDING, claimed_at__lt=stale_before)
                | Q(status=MessageStatus.SENDING, claimed_at__isnull=True)
            )
            .order_by("pk")[:limit]
        )
        for message in candidates:
            if message.status == MessageStatus.SENDING and not _recover_abandoned(message, now):
                continue
            message.status = MessageStatus.PENDING
            message.next_attempt_at = now  # not taken again by the sweep until the grace passes anew
            message.claimed_at = None
            message.save(update_fields=["status", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
            enqueue_on_commit(DELIVER_TASK, message.pk)
            queued += 1
    if queued:
        logger.info("integration sweep re-queued messages", extra={"count": queued})
    return queued


def retry_failed_messages(message_ids: Iterable[int]) -> int:
    """Gives failed messages a fresh round of attempts (the admin's retry); returns how many."""
    now = timezone.now()
    with transaction.atomic():
        messages = list(
            OutboundMessage.objects.select_for_update(of=("self",))
            .filter(pk__in=list(message_ids), status=MessageStatus.FAILED)
            .order_by("pk")
        )
        for message in messages:
            message.status = MessageStatus.PENDING
            message.attempts = 0
            message.next_attempt_at = now
            message.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
            enqueue_on_commit(DELIVER_TASK, message.pk)
    return len(messages)


def retry_delay(attempt: int, *, retry_after: float | None = None) -> float:
    """Seconds before try `attempt + 1`: exponential, plus up to 25% jitter so many messages that
    failed together do not return together, at least the receiver's Retry-After, capped (5 min)."""
    base = float(getattr(settings, "INTEGRATION_RETRY_BASE_SECONDS", 2.0))
    multiplier = float(getattr(settings, "INTEGRATION_RETRY_MULTIPLIER", 4.0))
    cap = min(
        float(getattr(settings, "INTEGRATION_RETRY_MAX_SECONDS", 300.0)),
        float(getattr(settings, "MAX_COUNTDOWN_SECONDS", 300.0)),
    )
    backoff = min(base * multiplier ** min(max(attempt - 1, 0), 30), cap)
    delay = backoff + random.uniform(0, backoff / 4)
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, cap)


def _claim(message_id: int) -> tuple[OutboundMessage, DeliveryAttempt] | None:
    now = timezone.now()
    with transaction.atomic():
        message = _locked(message_id)
        if message.status in (MessageStatus.DELIVERED, MessageStatus.FAILED):
            return None
        if message.status == MessageStatus.SENDING:
            if message.claimed_at is not None and message.claimed_at > now - _stale_after():
                return None
            if not _recover_abandoned(message, now):
                return None
        elif message.next_attempt_at is not None and message.next_attempt_at > now + EARLY_ALLOWANCE:
            return None
        integration = message.integration
        if not integration.active and message.event != TEST_EVENT:
            _mark_failed(message, now, f"Not sent: integration {integration.name!r} is inactive.")
            return None
        last_number = message.delivery_attempts.aggregate(last=Max("number"))["last"] or 0
        message.status = MessageStatus.SENDING
        message.attempts += 1
        message.claimed_at = now
        message.save(update_fields=["status", "attempts", "claimed_at", "last_error", "updated_at"])
        attempt = DeliveryAttempt.objects.create(message=message, number=last_number + 1, started_at=now)
    return message, attempt


def _finish(
    message: OutboundMessage,
    attempt: DeliveryAttempt,
    *,
    sent: adapters.Sent | None = None,
    error: adapters.DeliveryError | None = None,
) -> OutboundMessage:
    now = timezone.now()
    claimed_at = message.claimed_at
    if error is not None:  # the adapters scrub already; this holds for any text they did not build
        error.reason = outbound.scrub(error.reason, message.integration.target)
    with transaction.atomic():
        message = _locked(message.pk)  # the message row first, as everywhere: one lock order
        attempt.finished_at = now
        attempt.ok = error is None
        attempt.http_status = error.http_status if error else sent.http_status
        attempt.error = error.reason if error else ""
        attempt.save(update_fields=["finished_at", "ok", "http_status", "error"])
        if error is None:
            if message.status != MessageStatus.DELIVERED:
                _mark_delivered(message, now)
            return message
        if message.status != MessageStatus.SENDING or message.claimed_at != claimed_at:
            return message  # another worker took it over after this one looked dead: its call
        if error.permanent:
            _mark_failed(message, now, f"Permanent failure: {error.reason}")
        elif message.attempts >= message.integration.max_attempts:
            _mark_failed(message, now, f"Gave up after {message.attempts} attempts. Last error: {error.reason}")
        else:
            _schedule_retry(message, now, error)
    return message


def _schedule_retry(message: OutboundMessage, now: datetime, error: adapters.DeliveryError) -> None:
    delay = retry_delay(message.attempts, retry_after=error.retry_after)
    message.status = MessageStatus.PENDING
    message.next_attempt_at = now + timedelta(seconds=delay)
    message.claimed_at = None
    message.last_error = error.reason
    message.save(update_fields=["status", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
    integration_metrics.message_settled(message, "retrying")
    enqueue_on_commit(DELIVER_TASK, message.pk, countdown=delay)
    logger.warning(
        "integration delivery failed; retrying",
        extra={
            "message_id": message.pk,
            "attempt": message.attempts,
            "retry_in": round(delay, 2),
            "error": error.reason,
        },
    )


def _mark_delivered(message: OutboundMessage, now: datetime) -> None:
    message.status = MessageStatus.DELIVERED
    message.delivered_at = now
    message.next_attempt_at = None
    message.claimed_at = None
    message.last_error = ""
    message.save(update_fields=["status", "delivered_at", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
    integration_metrics.message_settled(message, "delivered")
    logger.info("integration message delivered", extra={"message_id": message.pk, "attempt": message.attempts})


def _mark_failed(message: OutboundMessage, now: datetime, reason: str) -> None:
    message.status = MessageStatus.FAILED
    message.next_attempt_at = None
    message.claimed_at = None
    message.last_error = reason
    message.save(update_fields=["status", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
    integration_metrics.message_settled(message, "failed")
    logger.warning("integration message failed", extra={"message_id": message.pk, "error": reason})


def _recover_abandoned(message: OutboundMessage, now: datetime) -> bool:
    """Closes the try a dead worker left open; True when the message may be tried again."""
    message.delivery_attempts.filter(finished_at__isnull=True).update(
        finished_at=now, ok=False, error=ABANDONED_ATTEMPT_ERROR
    )
    message.last_error = ABANDONED_ATTEMPT_ERROR
    if message.attempts >= message.integration.max_attempts:
        _mark_failed(message, now, f"Gave up after {message.attempts} attempts. Last error: {ABANDONED_ATTEMPT_ERROR}")
        return False
    return True


def _locked(message_id: int) -> OutboundMessage:
    return OutboundMessage.objects.select_for_update(of=("self",)).select_related("integration").get(pk=message_id)


def _stale_after() -> timedelta:
    """How long a claim holds: far longer than one send can take (HTTP and SMTP timeouts, the task's
    hard time limit), so only a worker that died leaves a message sending this long."""
    return timedelta(seconds=float(getattr(settings, "INTEGRATION_SENDING_STALE_SECONDS", 300.0)))
