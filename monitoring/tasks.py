"""The beat task: evaluates every enabled rule (RULE_EVALUATION_SECONDS, on the `timers` queue)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from monitoring import services


@shared_task(name="monitoring.evaluate_rules", ignore_result=True)
def evaluate_rules() -> dict:
    return asdict(services.evaluate_rules())
