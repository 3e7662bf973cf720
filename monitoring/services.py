"""Writes for alert rules, and their evaluation with Prometheus's semantics.

Each evaluation reads every watched metric once, then, rule by rule with the rule's row locked
(`select_for_update(skip_locked=True)`: a second beat or worker skips what the first is evaluating),
moves each series inactive -> pending -> firing (after `for_seconds`), and firing -> resolving ->
inactive once the clear (or the series' absence) has held for `hold_seconds`; a breach while resolving
is firing again. The rule fires while any series fires or resolves: a critical rule opens ONE incident
through the same ingestion service as an Alertmanager alert (dedup key `rule:<id>`; each series that
fires is an Alert row on it) and its policy phones once; a warning tells the integrations once per
episode. When no series is left firing or resolving, the incident resolves (or the integrations hear
it). State and actions commit together, so a crash between them cannot fire twice or forget a rule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from incidents.ingestion import namespaced_key
from incidents.models import OPEN_STATES, Alert, EventKind, Incident, Severity, Source
from incidents.services import open_incident, record_event, resolve_by_dedup_key
from integrations.services import notify
from monitoring import selectors, sources, texts
from monitoring.models import AlertRule, Level, RuleSeries, SeriesState

logger = logging.getLogger(__name__)

RULE_SOURCE = Source.GENERIC
FIRING_EVENT = "alert_rule.firing"
RESOLVED_EVENT = "alert_rule.resolved"
BATCH = 200
ACTIVE = (SeriesState.FIRING, SeriesState.RESOLVING)  # the rule fires while any series is in one of these


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
    if rule.firing_since is not None:
        _act_on_clear(rule, list(rule.series.filter(state__in=ACTIVE)), now, why=why)
        rule.firing_since = None
        AlertRule.objects.filter(pk=rule.pk).update(firing_since=None)
    rule.series.all().delete()


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    rules: int = 0
    skipped: int = 0  # locked by another evaluator
    fired: int = 0
    resolved: int = 0
    errors: int = 0


def dedup_key(rule: AlertRule) -> str:
    """One incident per rule, however many of its series fire (a slow database slows every route)."""
    return namespaced_key("rule", str(rule.pk))


def hold_seconds(rule: AlertRule) -> float:
    """How long a firing series must stay clear (or unreported) before it counts as resolved: the rule's
    for_seconds, and at least one full evaluation interval (Prometheus's keep_firing_for), so that one
    reading under the threshold, or a route without a request for 15 s, does not resolve and re-page."""
    return max(float(rule.for_seconds), float(settings.RULE_EVALUATION_SECONDS))


def _episode_key(rule: AlertRule, firing_since: datetime | None, what: str) -> str:
    """One notification per firing episode of a warning rule."""
    episode = int(firing_since.timestamp() * 1000) if firing_since else 0
    return f"rule:{rule.pk}:{episode}:{what}"


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
        known: dict[int, dict[str, RuleSeries]] = {}
        for state in RuleSeries.objects.filter(rule__in=rules):
            known.setdefault(state.rule_id, {})[state.series_key] = state
        created, changed, gone = [], [], []
        for rule in rules:
            rule.evaluated_at = now
            reading = readings.get(rule.metric)
            if isinstance(reading, Exception) or reading is None:
                rule.last_error = f"cannot read {rule.metric}: {reading}"[:500]
                report.errors += 1
                continue  # its series keep their state until the metric reads again
            rule.last_error = ""
            mine = known.get(rule.pk, {})
            ready, seen = [], set()
            for labels, value in reading.items():
                if not matches(rule.labels, labels):
                    continue
                key = sources.series_key(labels)
                seen.add(key)
                state = mine.get(key)
                if state is None:
                    state = mine[key] = RuleSeries(rule=rule, series_key=key, labels=dict(labels), evaluated_at=now)
                    created.append(state)
                else:
                    changed.append(state)
                if _step(rule, state, value, now):
                    ready.append(state)
            for key, state in list(mine.items()):
                if key not in seen and _step_absent(rule, state, now):
                    changed.append(state)
                elif key not in seen:
                    gone.append(state.pk)
                    del mine[key]
            _step_rule(rule, ready, list(mine.values()), now, report)
        RuleSeries.objects.bulk_create(created)
        changed = [state for state in changed if state.pk is not None]
        fields = ["state", "since", "cleared_at", "value", "evaluated_at"]
        RuleSeries.objects.bulk_update(changed, fields, batch_size=500)
        if gone:
            RuleSeries.objects.filter(pk__in=gone).delete()
        AlertRule.objects.bulk_update(rules, ["evaluated_at", "last_error", "firing_since"], batch_size=500)


def _step(rule: AlertRule, state: RuleSeries, value: float, now: datetime) -> bool:
    """Moves one reported series; True when it is ready to fire (pending for for_seconds)."""
    state.value, state.evaluated_at = value, now
    if rule.breached_by(value):
        if state.state in ACTIVE:  # firing, or resolving: back to firing, the same incident
            state.state, state.cleared_at = SeriesState.FIRING, None
            return False
        if state.state == SeriesState.INACTIVE:
            state.state, state.since = SeriesState.PENDING, now
        return (now - state.since).total_seconds() >= rule.for_seconds
    if state.state in ACTIVE:
        _clearing(rule, state, now)
    else:
        state.state, state.since = SeriesState.INACTIVE, None
    return False


def _step_absent(rule: AlertRule, state: RuleSeries, now: datetime) -> bool:
    """A series no longer reported (a route without a request in the window): like a clear that must
    hold, when it was firing; forgotten otherwise. True while it is kept."""
    if state.state not in ACTIVE:
        return False
    _clearing(rule, state, now)
    return state.state in ACTIVE


def _clearing(rule: AlertRule, state: RuleSeries, now: datetime) -> None:
    if state.cleared_at is None:
        state.state, state.cleared_at = SeriesState.RESOLVING, now
    if (now - state.cleared_at).total_seconds() >= hold_seconds(rule):
        state.state, state.since, state.cleared_at = SeriesState.INACTIVE, None, None


def _step_rule(
    rule: AlertRule, ready: list[RuleSeries], series: list[RuleSeries], now: datetime, report: EvaluationReport
) -> None:
    """The rule fires when its first series does, and resolves when none is firing or resolving."""
    if ready:
        if _act_on_fire(rule, ready, now):
            for state in ready:
                state.state, state.since, state.cleared_at = SeriesState.FIRING, now, None
            if rule.firing_since is None:
                rule.firing_since = now
                report.fired += 1
        else:
            report.errors += 1  # they stay pending: the next evaluation tries again
    if rule.firing_since is not None and not any(state.state in ACTIVE for state in series):
        _act_on_clear(rule, [], now, why="no series fires any more")
        rule.firing_since = None
        report.resolved += 1


def _listing(states: list[RuleSeries]) -> str:
    """ "" for one unlabelled series, its labels for one, "20 series: a, b, c…" for more."""
    keys = sorted(state.series_key for state in states)
    if len(keys) == 1:
        return keys[0]
    shown = ", ".join(keys[:3])
    return f"{len(keys)} series: {shown}{'…' if len(keys) > 3 else ''}"


def _payload(rule: AlertRule, states: list[RuleSeries], value: float | None, status: str) -> dict:
    metric = sources.metric_named(rule.metric)
    korean, english, _ = texts.describe(rule, metric, value if value is not None else 0.0, _listing(states))
    return {
        "summary": f"{korean} / {english}" if status == "firing" else f"[해소] {korean} / [resolved] {english}",
        "severity": rule.level,
        "state": status,
        "rule_id": rule.pk,
        "rule_name": rule.rule_name,
        "metric": rule.metric,
        "series": [state.series_key for state in states],
        "value": value,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "for_seconds": rule.for_seconds,
    }


def _series_payload(rule: AlertRule, state: RuleSeries, status: str) -> dict:
    """One Alert row per series that fires: the incident lists what crossed."""
    payload = _payload(rule, [state], state.value, status)
    payload["series"], payload["labels"] = state.series_key, state.labels
    return payload


def _actor(rule: AlertRule) -> str:
    return f"alert rule {rule.rule_name}"[:200]


def _act_on_fire(rule: AlertRule, ready: list[RuleSeries], now: datetime) -> bool:
    """Opens the rule's incident (or adds the series to the open one) or notifies; False (and the rule's
    last_error) when that failed."""
    ready = sorted(ready, key=lambda state: state.series_key)
    logger.info(
        "alert rule firing",
        extra={"rule": rule.rule_name, "series": _listing(ready), "value": ready[0].value, "rule_level": rule.level},
    )
    try:
        with transaction.atomic():
            if rule.level == Level.CRITICAL:
                _open_or_join(rule, ready)
            elif rule.firing_since is None:
                payload = _payload(rule, ready, ready[0].value, "firing")
                notify(FIRING_EVENT, payload, dedup_key=_episode_key(rule, now, "firing"))
    except Exception as error:  # no policy at all, a database error: the series stay pending and say why
        logger.exception("alert rule could not act", extra={"rule": rule.rule_name})
        rule.last_error = f"firing failed: {error}"[:500]
        return False
    return True


def _open_or_join(rule: AlertRule, ready: list[RuleSeries]) -> None:
    """The first payload opens the incident (or joins the open one: a plain duplicate places no call);
    every other series that fires is one more Alert row on it."""
    key = dedup_key(rule)
    first = ready[0]
    incident = Incident.objects.filter(dedup_key=key, state__in=OPEN_STATES).first()
    if incident is None:
        _, _, spoken = texts.describe(rule, sources.metric_named(rule.metric), first.value, _listing(ready))
        result = open_incident(
            summary=_payload(rule, ready, first.value, "firing")["summary"],
            tts_text=spoken,
            severity=Severity.CRITICAL,
            source=RULE_SOURCE,
            dedup_key=key,
            policy=rule.policy,
            payload=_series_payload(rule, first, "firing"),
            actor=_actor(rule),
        )
        incident, ready = result.incident, ready[1:]
    for state in ready:
        Alert.objects.create(
            incident=incident,
            source=RULE_SOURCE,
            payload=_series_payload(rule, state, "firing"),
            received_by=_actor(rule),
        )
    if ready:
        message = f"{_listing(ready)} also firing; no new call"
        record_event(incident, EventKind.DEDUPLICATED, actor=_actor(rule), message=message[:500])


def _act_on_clear(rule: AlertRule, states: list[RuleSeries], now: datetime, *, why: str) -> None:
    payload = _payload(rule, states, states[0].value if states else None, "resolved")
    payload["reason"] = why
    logger.info("alert rule resolved", extra={"rule": rule.rule_name, "why": why})
    if rule.level == Level.CRITICAL:
        resolve_by_dedup_key(dedup_key=dedup_key(rule), source=RULE_SOURCE, payload=payload, actor=_actor(rule))
    else:
        notify(RESOLVED_EVENT, payload, dedup_key=_episode_key(rule, rule.firing_since, "resolved"))
