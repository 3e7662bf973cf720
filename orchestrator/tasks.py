"""Thin tasks: they take ids, call a service, and are safe to run twice (the services guard).

A transient database error (a deadlock victim, a dropped connection) is retried with backoff and
jitter: every service is idempotent and guarded by the step on a locked row.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from orchestrator import dialing, doubt, timers

logger = logging.getLogger(__name__)

RETRY = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 0.2,
    "retry_backoff_max": 5,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="orchestrator.dial_attempt", **RETRY)
def dial_attempt(attempt_id: int) -> None:
    dialing.dial(attempt_id)


@shared_task(name="orchestrator.check_deadline", **RETRY)
def check_deadline(incident_id: int, step: int) -> None:
    timers.check_deadline(incident_id, step)


@shared_task(name="orchestrator.check_call_in_doubt", **RETRY)
def check_call_in_doubt(attempt_id: int, claim: str) -> None:
    doubt.check(attempt_id, claim)


@shared_task(name="orchestrator.sweep_escalations", **RETRY)
def sweep_escalations() -> int:
    """Every ESCALATION_SWEEP_SECONDS; it logs only when it found work (Celery's routine lines about it
    are filtered, config/logging.py)."""
    handled = timers.sweep_due()
    if handled:
        logger.info("escalation sweep handled due incidents", extra={"count": handled})
    return handled
