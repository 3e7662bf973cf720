"""Turns each monitoring system's payload into one call of the ingestion services."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction

from config.text import clean_text
from incidents.models import Source
from incidents.serializers import severity_from
from incidents.services import (
    IngestResult,
    choose_policy,
    open_incident,
    record_intake_warnings,
    resolve_by_dedup_key,
)

MAX_DEDUP_KEY = 255


@dataclass(frozen=True)
class Intake:
    """What an alert did, and what its sender should know (e.g. the policy it named is unknown)."""

    result: IngestResult
    warnings: tuple[str, ...] = ()


def _open(*, policy_reference: str | int | None, actor: str, **incident) -> Intake:
    """Opens or joins the incident with the chosen policy; any warning lands on its timeline too.

    Not one transaction around both: open_incident takes its own for what needs one (a new or
    re-triggered incident), and a plain duplicate commits its alert row alone, without waiting on
    anyone's lock (see open_incident)."""
    choice = choose_policy(policy_reference)
    result = open_incident(policy=choice.policy, actor=actor, **incident)
    if choice.warnings:
        with transaction.atomic():
            record_intake_warnings(result, choice.warnings, actor=actor)
    return Intake(result, choice.warnings)


def _resolve(**kwargs) -> Intake:
    return Intake(resolve_by_dedup_key(**kwargs))


def namespaced_key(source: str, key: str) -> str:
    """Keys of different sources never collide; a long Alertmanager groupKey is hashed to fit."""
    full = f"{source}:{key}"
    if len(full) <= MAX_DEDUP_KEY:
        return full
    return f"{source}:sha256:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def ingest_generic(data: dict, *, payload: dict, actor: str) -> Intake:
    if data["status"] == "resolved":
        return _resolve(dedup_key=data["dedup_key"], source=Source.GENERIC, payload=payload, actor=actor)
    return _open(
        summary=data["summary"],
        tts_text=data.get("tts_text", ""),
        severity=data["severity"],
        source=Source.GENERIC,
        dedup_key=data.get("dedup_key"),
        policy_reference=data.get("policy"),
        payload=payload,
        actor=actor,
    )


def _prometheus_summary(data: dict) -> tuple[str, str]:
    """(summary, spoken text) from the common annotations, else the first alert's."""
    alerts = data.get("alerts") or []
    first = alerts[0] if alerts else {"labels": {}, "annotations": {}}
    annotations = {**first.get("annotations", {}), **data.get("commonAnnotations", {})}
    labels = {**first.get("labels", {}), **data.get("commonLabels", {})}
    name = labels.get("alertname") or data.get("title") or "alert"
    summary = annotations.get("summary") or data.get("title") or name
    firing = sum(1 for alert in alerts if alert.get("status", "firing") == "firing")
    if firing > 1:
        summary = f"{summary} ({firing} alerts)"
    spoken = annotations.get("tts") or annotations.get("description") or summary
    return clean_text(summary)[:500], clean_text(spoken)[:2000]


@dataclass(frozen=True)
class FiringAlert:
    """Where a firing alert goes: its source, dedup key and the policy it names (None: the default)."""

    source: str
    dedup_key: str | None
    policy_reference: str | None


def firing_alert(source: str, data: dict, *, policy: str | None = None) -> FiringAlert | None:
    """What the ingest function of `source` would open or join for validated `data`; None for a
    resolve. The alert fast lane (incidents/fast_lane.py) decides with this whether an alert only
    joins an open incident, so both paths always agree on the key and the policy."""
    if source == Source.GENERIC:
        if data["status"] == "resolved":
            return None
        return FiringAlert(source, data.get("dedup_key"), data.get("policy"))
    if source == Source.ALERTMANAGER:
        if data["status"] == "resolved":
            return None
        dedup_key = namespaced_key(source, data["groupKey"])
    else:
        if _grafana_resolved(data):
            return None
        dedup_key = namespaced_key(source, _grafana_key(data))
    return FiringAlert(source, dedup_key, policy or data.get("commonLabels", {}).get("escalation_policy"))


def _grafana_key(data: dict) -> str:
    return data.get("groupKey") or next(alert["fingerprint"] for alert in data["alerts"] if alert.get("fingerprint"))


def _grafana_resolved(data: dict) -> bool:
    return data.get("state") == "ok" or (not data.get("state") and data.get("status") == "resolved")


def ingest_alertmanager(data: dict, *, payload: dict, actor: str, policy: str | None) -> Intake:
    dedup_key = namespaced_key(Source.ALERTMANAGER, data["groupKey"])
    if data["status"] == "resolved":
        return _resolve(dedup_key=dedup_key, source=Source.ALERTMANAGER, payload=payload, actor=actor)
    summary, spoken = _prometheus_summary(data)
    labels = data.get("commonLabels", {})
    return _open(
        summary=summary,
        tts_text=spoken,
        severity=severity_from(labels.get("severity")),
        source=Source.ALERTMANAGER,
        dedup_key=dedup_key,
        policy_reference=policy or labels.get("escalation_policy"),
        payload=payload,
        actor=actor,
    )


def ingest_grafana(data: dict, *, payload: dict, actor: str, policy: str | None) -> Intake:
    dedup_key = namespaced_key(Source.GRAFANA, _grafana_key(data))
    if _grafana_resolved(data):
        return _resolve(dedup_key=dedup_key, source=Source.GRAFANA, payload=payload, actor=actor)
    summary, spoken = _prometheus_summary(data)
    labels = data.get("commonLabels", {})
    return _open(
        summary=summary,
        tts_text=spoken if spoken != summary else clean_text(data.get("message") or summary)[:2000],
        severity=severity_from(labels.get("severity")),
        source=Source.GRAFANA,
        dedup_key=dedup_key,
        policy_reference=policy or labels.get("escalation_policy"),
        payload=payload,
        actor=actor,
    )
