"""Writes for alert rules, and their evaluation with Prometheus's semantics.

Each evaluation reads every watched metric once, then, rule by rule with the rule's row locked
(`select_for_update(skip_locked=True)`: a second beat or worker skips what the first is evaluating),
moves each series inactive -> pending -> firing (after `for_seconds`) and back to inactive when the
condition clears or the series disappears. Only the step to firing acts: a critical rule opens an
incident through the same ingestion service as an Alertmanager alert (dedup key `rule:<id>:<labels>`,
so it never opens twice) and its policy phones; a warning tells the integrations. Clearing resolves
the incident, or tells the integrations. State and actions commit together, so a crash between them
cannot fire twice or forget a firing rule.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from incidents.ingestion import namespaced_key
from incidents.models import Severity, Source
from incidents.services import open_incident, resolve_by_dedup_key
from integrations.services import notify
from monitoring import selectors, sources, texts
from monitoring.models import AlertRule, Level, RuleSeries, SeriesState

logger = logging.getLogger(__name__)

RULE_SOURCE = Source.GENERIC
FIRING_EVENT = "alert_rule.firing"
RESOLVED_EVENT = "alert_rule.resolved"
BATCH = 200


# --- rules ---------------------------------------------------------------------------------------


def create_rule(*, actor: Any = None, **fields: Any) -> AlertRule:
    rule = AlertRule(**fields)
    rule.full_clean()
    rule.save()
    audit.record(AuditAction.POLICY_CHANGED, actor=actor, target=f"alert-rule:{rule.rule_name}", data={"created": True})
    return rule


@transaction.atomic
def update_rule(rule: AlertRule, *, actor: Any = None, **fields: Any) -> AlertRule:
    """A rule switched off clears what it had fired (its incidents resolve)."""
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    if not rule.enabled:
        clear_rule(rule, timezone.now(), why="the rule was disabled")
    audit.record(
        AuditAction.POLICY_CHANGED, actor=actor, target=f"alert-rule:{rule.rule_name}", data={"fields": sorted(fields)}
    )
    return rule


@transaction.atomic
def delete_rule(rule: AlertRule, *, actor: Any = None) -> None:
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    clear_rule(rule, timezone.now(), why="the rule was deleted")
    audit.record(AuditAction.POLICY_CHANGED, actor=actor, target=f"alert-rule:{rule.rule_name}", data={"deleted": True})
    rule.delete()


def clear_rule(rule: AlertRule, now: datetime, *, why: str) -> None:
    """Resolves what the rule fired and forgets its series (disabled, deleted)."""
    for state in rule.series.filter(state=SeriesState.FIRING):
        _act_on_clear(rule, state, now, why=why)
    rule.series.all().delete()


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    rules: int = 0
    skipped: int = 0  # locked by another evaluator
    fired: int = 0
    resolved: int = 0
    errors: int = 0


def dedup_key(rule: AlertRule, key: str) -> str:
    return namespaced_key("rule", f"{rule.pk}:{key}")


def _episode_key(rule: AlertRule, key: str, firing_since: datetime | None, what: str) -> str:
    """One notification per firing episode of a warning (short: an outbound dedup key is at most 200)."""
    series_hash = hashlib.sha256(key.encode()).hexdigest()[:16]
    episode = int(firing_since.timestamp() * 1000) if firing_since else 0
    return f"rule:{rule.pk}:{series_hash}:{episode}:{what}"


def matches(wanted: dict, labels: sources.Labels) -> bool:
    have = dict(labels)
    return all(have.get(name) == str(value) for name, value in wanted.items())


def evaluate_rules(*, now: datetime | None = None) -> EvaluationReport:
    """One evaluation of every enabled rule (the beat task's body)."""
    now = now or timezone.now()
    watched = selectors.enabled_rule_metrics()
    readings = sources.read_metrics(metric for _, metric in watched)
    report = EvaluationReport()
    ids = [pk for pk, _ in watched]
    for start in range(0, len(ids), BATCH):
        _evaluate_batch(ids[start : start + BATCH], readings, now, report)
    return report


def _evaluate_batch(ids: list[int], readings: dict, now: datetime, report: EvaluationReport) -> None:
    with transaction.atomic():
        rules = list(
            AlertRule.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, enabled=True)
            .select_related("policy")
            .order_by("pk")
        )
        report.skipped += len(ids) - len(rules)
        report.rules += len(rules)
        known = {(state.rule_id, state.series_key): state for state in RuleSeries.objects.filter(rule__in=rules)}
        created, changed, gone = [], [], []
        for rule in rules:
            rule.evaluated_at = now
            reading = readings.get(rule.metric)
            if isinstance(reading, Exception) or reading is None:
                rule.last_error = f"cannot read {rule.metric}: {reading}"[:500]
                report.errors += 1
                continue  # its series keep their state until the metric reads again
            rule.last_error = ""
            seen = set()
            for labels, value in reading.items():
                if not matches(rule.labels, labels):
                    continue
                key = sources.series_key(labels)
                seen.add(key)
                state = known.get((rule.pk, key))
                if state is None:
                    state = RuleSeries(rule=rule, series_key=key, labels=dict(labels), evaluated_at=now)
                    created.append(state)
                else:
                    changed.append(state)
                _step(rule, state, value, now, report)
            for (rule_id, key), state in known.items():
                if rule_id == rule.pk and key not in seen:  # the series is gone: like a clear
                    if state.state == SeriesState.FIRING:
                        _act_on_clear(rule, state, now, why="its series is no longer reported")
                        report.resolved += 1
                    gone.append(state.pk)
        RuleSeries.objects.bulk_create(created)
        RuleSeries.objects.bulk_update(changed, ["state", "since", "value", "evaluated_at"], batch_size=500)
        if gone:
            RuleSeries.objects.filter(pk__in=gone).delete()
        AlertRule.objects.bulk_update(rules, ["evaluated_at", "last_error"], batch_size=500)


def _step(rule: AlertRule, state: RuleSeries, value: float, now: datetime, report: EvaluationReport) -> None:
    state.value, state.evaluated_at = value, now
    if not rule.breached_by(value):
        if state.state == SeriesState.FIRING:
            _act_on_clear(rule, state, now, why="the condition cleared")
            report.resolved += 1
        state.state, state.since = SeriesState.INACTIVE, None
        return
    if state.state == SeriesState.INACTIVE:
        state.state, state.since = SeriesState.PENDING, now
    if state.state == SeriesState.PENDING and (now - state.since).total_seconds() >= rule.for_seconds:
        if _act_on_fire(rule, state, value, now):
            state.state, state.since = SeriesState.FIRING, now
            report.fired += 1
        else:
            report.errors += 1  # stays pending: the next evaluation tries again


def _payload(rule: AlertRule, state: RuleSeries, value: float | None, status: str) -> dict:
    metric = sources.metric_named(rule.metric)
    korean, english, _ = texts.describe(rule, metric, value if value is not None else 0.0, state.series_key)
    return {
        "summary": f"{korean} / {english}" if status == "firing" else f"[해소] {korean} / [resolved] {english}",
        "severity": rule.level,
        "state": status,
        "rule_id": rule.pk,
        "rule_name": rule.rule_name,
        "metric": rule.metric,
        "labels": state.labels,
        "value": value,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "for_seconds": rule.for_seconds,
    }


def _actor(rule: AlertRule) -> str:
    return f"alert rule {rule.rule_name}"[:200]


def _act_on_fire(rule: AlertRule, state: RuleSeries, value: float, now: datetime) -> bool:
    """Opens the incident or notifies; False (and the rule's last_error) when that failed."""
    payload = _payload(rule, state, value, "firing")
    logger.info(
        "alert rule firing",
        extra={"rule": rule.rule_name, "series": state.series_key, "value": value, "rule_level": rule.level},
    )
    try:
        with transaction.atomic():
            if rule.level == Level.CRITICAL:
                _, _, spoken = texts.describe(rule, sources.metric_named(rule.metric), value, state.series_key)
                open_incident(
                    summary=payload["summary"],
                    tts_text=spoken,
                    severity=Severity.CRITICAL,
                    source=RULE_SOURCE,
                    dedup_key=dedup_key(rule, state.series_key),
                    policy=rule.policy,
                    payload=payload,
                    actor=_actor(rule),
                )
            else:
                notify(FIRING_EVENT, payload, dedup_key=_episode_key(rule, state.series_key, now, "firing"))
    except Exception as error:  # no policy at all, a database error: the rule stays pending and says why
        logger.exception("alert rule could not act", extra={"rule": rule.rule_name})
        rule.last_error = f"firing failed: {error}"[:500]
        return False
    return True


def _act_on_clear(rule: AlertRule, state: RuleSeries, now: datetime, *, why: str) -> None:
    payload = _payload(rule, state, state.value, "resolved")
    payload["reason"] = why
    logger.info("alert rule resolved", extra={"rule": rule.rule_name, "series": state.series_key, "why": why})
    if rule.level == Level.CRITICAL:
        resolve_by_dedup_key(
            dedup_key=dedup_key(rule, state.series_key), source=RULE_SOURCE, payload=payload, actor=_actor(rule)
        )
    else:
        notify(RESOLVED_EVENT, payload, dedup_key=_episode_key(rule, state.series_key, state.since, "resolved"))
