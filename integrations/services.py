"""Writes for integrations' messages: our events fanned out (`notify`), the messages API (`send_sync`,
`send_async`, `replay`), delivery (`deliver`) and its retries.

A message moves pending → sending → delivered | failed (a permanent error) | dead (every attempt
failed); sending → pending again for a retry. A worker claims it on a locked row before any network
call, so two tasks for one message (a sweep and a countdown, a redelivered task) send it once; the
network call runs outside any transaction. Retries: a short countdown task first, the beat sweep
(`retry_due_messages`) as the safety net. Before a claim, the integration's circuit breaker
(config.breaker, "integration:<slug>") and its token bucket (integrations.ratelimit) may put the
message off without counting an attempt.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from config import breaker, outbound
from config.celery_utils import enqueue_on_commit
from config.errors import DomainError, InvalidInput
from integrations import credentials, providers, ratelimit
from integrations import metrics as integration_metrics
from integrations.models import (
    TEST_EVENT,
    DeliveryAttempt,
    Integration,
    MessageStatus,
    MessageType,
    OutboundMessage,
)
from integrations.providers import CallContext, ProviderError, Result
from integrations.providers.http import excerpt_of
from integrations.selectors import subscribed_integrations

logger = logging.getLogger(__name__)

DELIVER_TASK = "integrations.deliver_message"
DEDUP_KEY_MAX_CHARS = OutboundMessage._meta.get_field("dedup_key").max_length
# A countdown task fires at or after the time it was scheduled for; a small allowance absorbs clock
# differences between worker hosts, beyond which an early task leaves the message to a later one.
EARLY_ALLOWANCE = timedelta(seconds=1)
SETTLED = (MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.DEAD)
# what a refund's audit row repeats from its input, under these names: enough to see what was asked,
# never a secret (the audit refuses names with "key" in them, hence "payment" for a Toss paymentKey)
REFUND_AUDITED_FIELDS = {
    "payment_key": "payment",
    "order_id": "order_id",
    "tid": "tid",
    "amount": "amount",
    "cancel_amount": "cancel_amount",
    "refund_amount": "refund_amount",
    "reason": "reason",
    "cancel_reason": "cancel_reason",
}
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
                defaults={
                    "event": event,
                    "method": providers.get(integration.provider).event_method,
                    "payload": payload,
                    "next_attempt_at": timezone.now(),
                },
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
            method=providers.get(integration.provider).event_method,
            dedup_key=f"test:{uuid.uuid4().hex}",
            payload=payload,
            next_attempt_at=timezone.now(),
        )
        enqueue_on_commit(DELIVER_TASK, message.pk)
    return message


def deliver(message_id: int) -> OutboundMessage:
    """Sends one message once: claim, send (outside the transaction), record, then decide.

    A message that is settled, being sent by another worker, or not yet due is returned untouched,
    so a duplicate or early task is harmless. Raises OutboundMessage.DoesNotExist.
    """
    claim = _claim(message_id)
    if claim is None:
        return OutboundMessage.objects.select_related("integration").get(pk=message_id)
    message, attempt = claim
    result, error = _call(message, CallContext(message_id=message.pk, event=message.event, attempt=attempt.number))
    return _finish(message, attempt, result=result, error=error)


def send_sync(
    integration: Integration, payload: dict, *, idempotency_key: str = "", actor: Any = None
) -> tuple[OutboundMessage, bool]:
    """Calls a provider method now (the messages API's "sync"), recording the message and its one
    attempt; returns (message, created). A known idempotency key returns the first call's message
    and calls nothing. Sync messages are not retried: the caller sees the outcome and decides."""
    method, data = _validated(integration, payload)
    message, created = _create_api_message(integration, method, data, MessageType.SYNC, idempotency_key, actor)
    if not created:
        return message, False
    now = timezone.now()
    if integration.active and (until := breaker.open_until(integration.breaker_name)):
        _mark_failed(message, now, f"Not sent: the circuit breaker of {integration.integration_id} is open.")
        raise CircuitOpen(integration, until)
    wait = ratelimit.take(integration)
    if wait > _sync_budget():
        _mark_failed(message, now, "Not sent: the integration's rate limit was reached.")
        raise RateLimited(integration, wait)
    if wait > 0:
        time.sleep(wait)
    claim = _claim(message.pk)
    if claim is None:  # inactive: _claim marked it failed
        return OutboundMessage.objects.select_related("integration").get(pk=message.pk), True
    message, attempt = claim
    result, error = _call(message, CallContext(message_id=message.pk, timeout=_sync_timeout(), attempt=attempt.number))
    return _finish(message, attempt, result=result, error=error), True


def send_async(
    integration: Integration, payload: dict, *, idempotency_key: str = "", actor: Any = None
) -> tuple[OutboundMessage, bool]:
    """Queues a provider method call (the messages API's "async"); returns (message, created)."""
    method, data = _validated(integration, payload)
    return _create_api_message(integration, method, data, MessageType.ASYNC, idempotency_key, actor)


def replay(message: OutboundMessage, *, actor: Any = None) -> OutboundMessage:
    """A failed or dead-lettered message gets a fresh round of attempts (the API's replay)."""
    with transaction.atomic():
        if retry_failed_messages([message.pk]) == 0:
            raise DomainError(
                f"Message {message.pk} is {message.status}; only failed or dead messages can be replayed.",
                code="not_replayable",
            )
        _audit_refund_request(message, actor, replayed=True)
    return OutboundMessage.objects.select_related("integration").get(pk=message.pk)


class CircuitOpen(DomainError):
    status_code = 503
    code = "circuit_open"

    def __init__(self, integration: Integration, until: float):
        self.retry_after = max(1, int(until - time.time()) + 1)
        super().__init__(
            f"{integration.integration_id} failed repeatedly; it is not called for {self.retry_after} s "
            "(circuit breaker open). Try again later or send the message async."
        )


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, integration: Integration, wait: float):
        self.retry_after = max(1, int(wait) + 1)
        super().__init__(
            f"{integration.integration_id} takes at most {ratelimit.rate_for(integration):g} messages per second; "
            f"try again in {self.retry_after} s or send the message async."
        )


def _validated(integration: Integration, payload: dict) -> tuple[str, dict]:
    if not integration.active:
        raise DomainError(f"Integration {integration.integration_id} is inactive.", code="inactive")
    return providers.get(integration.provider).validate(payload)


def _create_api_message(
    integration: Integration, method: str, data: dict, message_type: str, idempotency_key: str, actor: Any
) -> tuple[OutboundMessage, bool]:
    dedup_key = f"idem:{idempotency_key}" if idempotency_key else f"api:{uuid.uuid4().hex}"
    with transaction.atomic():
        message, created = OutboundMessage.objects.get_or_create(
            integration=integration,
            dedup_key=dedup_key,
            defaults={
                "event": "",
                "method": method,
                "payload": data,
                "message_type": message_type,
                "idempotency_key": idempotency_key,
                "next_attempt_at": timezone.now(),
            },
        )
        if created:
            _audit_refund_request(message, actor)
        if created and message_type == MessageType.ASYNC:
            enqueue_on_commit(DELIVER_TASK, message.pk)
    return message, created


def _audit_refund_request(message: OutboundMessage, actor: Any, *, replayed: bool = False) -> None:
    """A refund method's request, audited with who asked and the amounts asked for (never credentials)."""
    if message.method not in providers.get(message.integration.provider).refund_methods:
        return
    asked = {
        audited: message.payload[name] for name, audited in REFUND_AUDITED_FIELDS.items() if name in message.payload
    }
    audit.record(
        AuditAction.PAYMENT_REFUND_REQUESTED,
        actor=actor,
        target=f"integration:{message.integration.integration_id}:message:{message.pk}",
        data={"method": message.method, "message_type": message.message_type, "replayed": replayed, **asked},
    )


def _call(message: OutboundMessage, context: CallContext) -> tuple[Result | None, ProviderError | None]:
    """Runs the message's provider method; every failure becomes a ProviderError, never an exception."""
    integration = message.integration
    provider = providers.get(integration.provider)
    try:
        method = message.method or provider.event_method
        if message.event:  # one of our events: the provider's natural method, built now (it names the message)
            data = provider.event_input(integration, message.event, message.payload, context)
        else:
            data = message.payload
        result = provider.call(integration, method, data, context)
    except ProviderError as exc:
        return None, exc
    except Exception as exc:  # a bug or an unexpected library error: recorded and retried, never lost
        # Logged without exc_info: a library's message or traceback may repeat a secret.
        trace = _scrub(message, "".join(traceback.format_exception(exc)))
        logger.error("integration provider crashed", extra={"message_id": message.pk, "traceback": trace})
        return None, ProviderError(f"{type(exc).__name__}: {exc}", permanent=False)
    if not isinstance(result, Result):
        result = Result(data=result)
    return result, None


def _scrub(message: OutboundMessage, text: str) -> str:
    integration = message.integration
    text = outbound.scrub(text, integration.endpoint_url)
    try:
        return credentials.scrub_secrets(text, integration.auth_config)
    except credentials.CredentialError:
        return text


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
    """Gives failed and dead messages a fresh round of attempts (the admin's retry, the API's replay);
    returns how many. Delivered ones are left alone: a replay never sends a message twice."""
    now = timezone.now()
    with transaction.atomic():
        messages = list(
            OutboundMessage.objects.select_for_update(of=("self",))
            .filter(pk__in=list(message_ids), status__in=(MessageStatus.FAILED, MessageStatus.DEAD))
            .order_by("pk")
        )
        for message in messages:
            message.status = MessageStatus.PENDING
            message.attempts = 0
            message.next_attempt_at = now
            message.message_type = MessageType.ASYNC  # a replayed sync call is delivered by the queue
            message.save(update_fields=["status", "attempts", "next_attempt_at", "message_type", "updated_at"])
            enqueue_on_commit(DELIVER_TASK, message.pk)
    return len(messages)


def retry_delay(attempt: int, *, retry_after: float | None = None) -> float:
    """Seconds before try `attempt + 1`: exponential, plus up to 25% jitter so many messages that
    failed together do not return together, capped (5 min); never before the receiver's Retry-After
    (or X's rate-limit reset), which may be later, up to INTEGRATION_RETRY_AFTER_MAX_SECONDS: a try
    sent before a 15-minute window reopens would only spend an attempt."""
    base = float(getattr(settings, "INTEGRATION_RETRY_BASE_SECONDS", 2.0))
    multiplier = float(getattr(settings, "INTEGRATION_RETRY_MULTIPLIER", 4.0))
    cap = _countdown_cap()
    backoff = min(base * multiplier ** min(max(attempt - 1, 0), 30), cap)
    delay = min(backoff + random.uniform(0, backoff / 4), cap)
    if retry_after:
        delay = max(delay, min(retry_after, float(getattr(settings, "INTEGRATION_RETRY_AFTER_MAX_SECONDS", 3600.0))))
    return delay


def _claim(message_id: int) -> tuple[OutboundMessage, DeliveryAttempt] | None:
    now = timezone.now()
    with transaction.atomic():
        message = _locked(message_id)
        if message.status in SETTLED:
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
        if message.message_type == MessageType.ASYNC and _put_off(message, now):
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
    result: Result | None = None,
    error: ProviderError | None = None,
) -> OutboundMessage:
    now = timezone.now()
    claimed_at = message.claimed_at
    integration = message.integration
    if error is not None:  # the providers scrub already; this holds for any text they did not build
        error.reason = _scrub(message, error.reason)
        if not error.permanent:
            breaker.record_failure(
                integration.breaker_name,
                threshold=settings.INTEGRATION_BREAKER_FAILURE_THRESHOLD,
                window=settings.INTEGRATION_BREAKER_WINDOW_SECONDS,
                cooldown=settings.INTEGRATION_BREAKER_COOLDOWN_SECONDS,
            )
    else:
        breaker.record_success(integration.breaker_name)
    with transaction.atomic():
        message = _locked(message.pk)  # the message row first, as everywhere: one lock order
        attempt.finished_at = now
        attempt.ok = error is None
        attempt.http_status = error.http_status if error else result.http_status
        attempt.error = error.reason if error else ""
        attempt.excerpt = "" if error else _scrub(message, excerpt_of(result.data))
        attempt.request_id = ((error.request_id if error else result.request_id) or "")[:200]
        attempt.save(update_fields=["finished_at", "ok", "http_status", "error", "excerpt", "request_id"])
        _audit_refund_outcome(message, attempt, error)
        if error is None:
            if message.status != MessageStatus.DELIVERED:
                message.result = result.data if message.message_type == MessageType.SYNC else None
                _mark_delivered(message, now)
            return message
        if message.status != MessageStatus.SENDING or message.claimed_at != claimed_at:
            return message  # another worker took it over after this one looked dead: its call
        message.timed_out = error.timed_out  # not stored: the API's sync answer reads it (504)
        if error.permanent:
            _mark_failed(message, now, f"Permanent failure: {error.reason}")
        elif message.message_type == MessageType.SYNC:
            _mark_failed(message, now, error.reason)
        elif message.attempts >= integration.max_attempts:
            _mark_dead(message, now, f"Gave up after {message.attempts} attempts. Last error: {error.reason}")
        else:
            _schedule_retry(message, now, error)
    return message


def _audit_refund_outcome(message: OutboundMessage, attempt: DeliveryAttempt, error: ProviderError | None) -> None:
    """Each try of a refund method leaves an audit row with its outcome and the provider's request id
    (the request itself was audited when it was accepted, with the person or key that asked)."""
    if not message.method or message.method not in providers.get(message.integration.provider).refund_methods:
        return
    audit.record(
        AuditAction.PAYMENT_REFUND_ATTEMPTED,
        actor=f"integration:{message.integration.integration_id}",
        target=f"integration:{message.integration.integration_id}:message:{message.pk}",
        data={
            "method": message.method,
            "attempt": attempt.number,
            "ok": error is None,
            "http_status": attempt.http_status,
            "request_id": attempt.request_id,
            "error": attempt.error[:300],
            "timed_out": bool(error and error.timed_out),
        },
    )


def _put_off(message: OutboundMessage, now: datetime) -> bool:
    """Leaves the message pending for later, no attempt counted, while the integration's breaker is
    open or its rate limit is reached; True when it did."""
    integration = message.integration
    until = breaker.open_until(integration.breaker_name)
    if until is not None:
        delay, why = max(0.0, until - time.time()), "circuit breaker open"
    else:
        delay, why = ratelimit.take(integration), "rate limit"
    if delay <= 0:
        return False
    delay = min(delay + random.uniform(0, min(delay, 1.0) / 4), _countdown_cap())
    message.status = MessageStatus.PENDING
    message.next_attempt_at = now + timedelta(seconds=delay)
    message.save(update_fields=["status", "next_attempt_at", "updated_at"])
    enqueue_on_commit(DELIVER_TASK, message.pk, countdown=delay)
    logger.info("integration message put off", extra={"message_id": message.pk, "why": why, "delay": round(delay, 2)})
    return True


def _countdown_cap() -> float:
    return min(
        float(getattr(settings, "INTEGRATION_RETRY_MAX_SECONDS", 300.0)),
        float(getattr(settings, "MAX_COUNTDOWN_SECONDS", 300.0)),
    )


def _sync_timeout() -> tuple[float, float]:
    timeout = getattr(settings, "INTEGRATION_SYNC_TIMEOUT", (2.0, 5.0))
    return tuple(timeout) if isinstance(timeout, list | tuple) else (float(timeout), float(timeout))


def _sync_budget() -> float:
    """How long a sync call may wait for a rate-limit token before the caller gets a 429."""
    return float(getattr(settings, "INTEGRATION_SYNC_RATE_WAIT_SECONDS", 1.0))


def _schedule_retry(message: OutboundMessage, now: datetime, error: ProviderError) -> None:
    delay = retry_delay(message.attempts, retry_after=error.retry_after)
    message.status = MessageStatus.PENDING
    message.next_attempt_at = now + timedelta(seconds=delay)
    message.claimed_at = None
    message.last_error = error.reason
    message.save(update_fields=["status", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
    integration_metrics.message_settled(message, "retrying")
    # a countdown longer than the cap is left to the sweep (retry_due_messages), which sends it once due
    enqueue_on_commit(DELIVER_TASK, message.pk, countdown=min(delay, _countdown_cap()))
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


def _mark_dead(message: OutboundMessage, now: datetime, reason: str) -> None:
    """Every attempt failed: dead-lettered, kept for a person to retry (admin) or replay (API)."""
    message.status = MessageStatus.DEAD
    message.next_attempt_at = None
    message.claimed_at = None
    message.last_error = reason
    message.save(update_fields=["status", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
    integration_metrics.message_settled(message, "dead")
    logger.warning("integration message dead-lettered", extra={"message_id": message.pk, "error": reason})


def _recover_abandoned(message: OutboundMessage, now: datetime) -> bool:
    """Closes the try a dead worker left open; True when the message may be tried again."""
    message.delivery_attempts.filter(finished_at__isnull=True).update(
        finished_at=now, ok=False, error=ABANDONED_ATTEMPT_ERROR
    )
    message.last_error = ABANDONED_ATTEMPT_ERROR
    if message.attempts >= message.integration.max_attempts:
        _mark_dead(message, now, f"Gave up after {message.attempts} attempts. Last error: {ABANDONED_ATTEMPT_ERROR}")
        return False
    return True


def _locked(message_id: int) -> OutboundMessage:
    return OutboundMessage.objects.select_for_update(of=("self",)).select_related("integration").get(pk=message_id)


def _stale_after() -> timedelta:
    """How long a claim holds: far longer than one send can take (HTTP and SMTP timeouts, the task's
    hard time limit), so only a worker that died leaves a message sending this long."""
    return timedelta(seconds=float(getattr(settings, "INTEGRATION_SENDING_STALE_SECONDS", 300.0)))
