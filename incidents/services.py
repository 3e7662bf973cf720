"""Writes for incidents: contacts and policies, alert ingestion (find-or-create by dedup key),
acknowledge, resolve. The escalation itself (calls, timers) is the engine's: this app is the record
and never imports the engine; the engine registers itself here (set_escalation_engine) when Django
starts, so the dependency runs one way."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from config.compiled_queries import CompiledInsert, CompiledQuery, save_fields
from config.errors import DomainError, InvalidInput, NotFound, Unprocessable
from config.ttlcache import TTLCache
from incidents import duplicates, selectors
from incidents import metrics as incident_metrics
from incidents.models import (
    OPEN_STATES,
    Alert,
    Contact,
    EscalationPolicy,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentState,
    PolicyContact,
    Severity,
    Source,
    can_transition,
)

logger = logging.getLogger(__name__)

SEED_POLICY_NAME = "default (PRIMARY_CONTACT/SECONDARY_CONTACT)"


# --- the escalation engine ------------------------------------------------------------------------


class EscalationEngine(Protocol):
    """What the record needs from the engine when an alert opens or re-fires an incident. Both are
    called inside the transaction that wrote the incident, with its row locked."""

    def start(self, incident: Incident) -> Any: ...

    def retrigger(self, incident: Incident, *, reason: str, actor: str) -> Any: ...


_engine: EscalationEngine | None = None


def set_escalation_engine(engine: EscalationEngine | None) -> None:
    """Called by the engine's AppConfig.ready(); the last registration wins."""
    global _engine
    _engine = engine


def escalation_engine() -> EscalationEngine:
    """The registered engine. Without one an incident would open and never ring: refuse loudly."""
    if _engine is None:
        raise ImproperlyConfigured(
            "No escalation engine is registered: an incident would open and never ring. "
            "Add the engine app (orchestrator) to INSTALLED_APPS; its ready() registers it."
        )
    return _engine


# Every carrier callback, dial and opening writes timeline rows, every opening an alert row: their
# INSERTs are compiled once per process (config.compiled_queries).
_INSERT_EVENT = CompiledInsert(IncidentEvent)
_INSERT_ALERT = CompiledInsert(Alert)


def record_event(
    incident: Incident,
    kind: str,
    *,
    actor: str = "system",
    message: str = "",
    attempt: Any = None,
    data: dict | None = None,
) -> IncidentEvent:
    """One timeline row, and its one INFO log line: the log alone tells an incident's story (opened,
    call placed on which carrier to whom, answered, digit, acknowledged by, escalated, exhausted)."""
    event = _INSERT_EVENT.create(
        incident=incident,
        kind=kind,
        actor=actor[:200],
        message=message[:500],
        attempt_id=attempt.pk if attempt is not None else None,
        data=data or {},
    )
    fields: dict[str, Any] = {"incident_id": incident.pk, "kind": str(kind), "actor": event.actor}
    fields["detail"] = event.message  # ("message" is the log record's own field)
    if incident.is_drill:
        fields["drill"] = True
    if attempt is not None:
        fields["attempt"] = getattr(attempt, "step", None)
        contact = getattr(attempt, "contact", None)
        fields["contact"] = getattr(contact, "name", None)
    logger.info("incident event", extra=fields)
    return event


# --- contacts and policies ------------------------------------------------------------------------


def create_contact(
    *,
    name: str,
    phone: str,
    language: str = "ko-KR",
    active: bool = True,
    preferred_provider: str = "",
    user: Any = None,
    actor: Any = None,
) -> Contact:
    contact = Contact(
        name=name, phone=phone, language=language, active=active, preferred_provider=preferred_provider, user=user
    )
    contact.full_clean()
    contact.save()
    audit.record(AuditAction.CONTACT_CHANGED, actor=actor, target=f"contact:{contact}", data={"created": True})
    return contact


def update_contact(contact: Contact, *, actor: Any = None, **fields: Any) -> Contact:
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.full_clean()
    contact.save()
    audit.record(AuditAction.CONTACT_CHANGED, actor=actor, target=f"contact:{contact}", data={"fields": sorted(fields)})
    return contact


@transaction.atomic
def create_policy(
    *, name: str, contacts: list[Contact], is_default: bool = False, actor: Any = None, **options: Any
) -> EscalationPolicy:
    """A policy calling `contacts` in the order given (the first is the primary)."""
    _check_contact_order(contacts)
    if is_default:
        EscalationPolicy.objects.filter(is_default=True).update(is_default=False)
    policy = EscalationPolicy(name=name, is_default=is_default, **options)
    policy.full_clean()
    policy.save()
    _set_contact_order(policy, contacts)
    audit.record(AuditAction.POLICY_CHANGED, actor=actor, target=f"policy:{policy.name}", data={"created": True})
    return policy


POLICY_FIELDS = (
    "name",
    "max_attempts",
    "ring_timeout_seconds",
    "pause_seconds",
    "message_repeats",
    "record_calls",
    "is_default",
)


@transaction.atomic
def update_policy(
    policy: EscalationPolicy, *, actor: Any = None, contacts: list[Contact] | None = None, **fields: Any
) -> EscalationPolicy:
    """Changes a policy's settings and, when `contacts` is given, its call order (replaced whole).

    Incidents already ringing follow the new order from their next call on. Marking a policy default
    unmarks the previous default in the same transaction."""
    unknown = sorted(set(fields) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown policy fields: {', '.join(unknown)}.", fields=dict.fromkeys(unknown, "unknown"))
    policy = EscalationPolicy.objects.select_for_update().get(pk=policy.pk)
    if contacts is not None:
        _check_contact_order(contacts)
    if fields.get("is_default"):
        EscalationPolicy.objects.filter(is_default=True).exclude(pk=policy.pk).update(is_default=False)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    if contacts is not None:
        _set_contact_order(policy, contacts)
    changed = sorted([*fields, *(["contacts"] if contacts is not None else [])])
    audit.record(AuditAction.POLICY_CHANGED, actor=actor, target=f"policy:{policy.name}", data={"fields": changed})
    return policy


def _check_contact_order(contacts: list[Contact]) -> None:
    if not contacts:
        raise InvalidInput("A policy needs at least one contact.", fields={"contacts": "required"})
    seen: set[int] = set()
    for contact in contacts:
        if contact.pk in seen:
            raise InvalidInput(
                f"Contact {contact.pk} is listed twice; a policy lists each contact once (calls go round the list).",
                fields={"contacts": f"contact {contact.pk} is listed twice"},
            )
        seen.add(contact.pk)


def _set_contact_order(policy: EscalationPolicy, contacts: list[Contact]) -> None:
    """Positions follow the list: the first contact is called first."""
    PolicyContact.objects.filter(policy=policy).delete()
    PolicyContact.objects.bulk_create(
        PolicyContact(policy=policy, contact=contact, position=position) for position, contact in enumerate(contacts)
    )


def ensure_seed_policy() -> EscalationPolicy | None:
    """The seed's behaviour: PRIMARY_CONTACT and SECONDARY_CONTACT, called alternately.

    The same number twice is one person called on every attempt (a policy lists a contact once).
    Two first alerts at once both try to create it: the loser's insert hits the unique name, its
    savepoint rolls back (contacts included), and it takes the winner's policy.
    """
    numbers = list(dict.fromkeys(n for n in (settings.PRIMARY_CONTACT, settings.SECONDARY_CONTACT) if n))
    if not numbers:
        return None
    for _ in range(3):
        policy = EscalationPolicy.objects.filter(name=SEED_POLICY_NAME).first()
        if policy is not None:
            return policy
        try:
            with transaction.atomic():
                return _create_seed_policy(numbers)
        except IntegrityError:
            logger.info("another request created the seed policy first; using theirs")
        except ValidationError:
            # full_clean() checks the unique name and the one-default constraint itself: when the
            # other first alert committed in between, that check (not the insert) is what fails
            if not EscalationPolicy.objects.filter(name=SEED_POLICY_NAME).exists():
                raise
            logger.info("another request created the seed policy first; using theirs")
    raise DomainError("The seed policy could not be created; try again.", code="seed_policy_conflict")


def _create_seed_policy(numbers: list[str]) -> EscalationPolicy:
    contacts = [
        Contact.objects.filter(phone=number).order_by("pk").first() or create_contact(name=role, phone=number)
        for role, number in zip(("primary", "secondary"), numbers, strict=False)
    ]
    return create_policy(
        name=SEED_POLICY_NAME,
        contacts=contacts,
        is_default=not EscalationPolicy.objects.filter(is_default=True).exists(),
        max_attempts=settings.MAX_ATTEMPTS,
        ring_timeout_seconds=max(5, settings.CALL_TIMEOUT_SECONDS),
    )


@dataclass(frozen=True)
class PolicyChoice:
    """The policy an alert is escalated with, and what the sender should know about the choice."""

    policy: EscalationPolicy
    warnings: tuple[str, ...] = ()


# Which policy an alert goes to, per reference, read at most once per POLICY_CACHE_SECONDS per process
# (every alert of a storm asks): a change made here clears it at once (incidents.apps), elsewhere
# within seconds. "No policy at all" is never cached.
POLICY_CHOICES = TTLCache("POLICY_CACHE_SECONDS")


def choose_policy(reference: str | int | None) -> PolicyChoice:
    """The named policy (by id or name), else the default one, else the seed's from the environment.

    An alert naming a policy we do not know still pages (Alertmanager does not retry a 4xx, so a
    refusal would drop it): it goes to the fallback, with a warning. Only when there is no policy at
    all is the alert refused (422).
    """
    return POLICY_CHOICES.get_or_load(str(reference or ""), lambda: _choose_policy(reference))


def _choose_policy(reference: str | int | None) -> PolicyChoice:
    if reference in (None, ""):
        return PolicyChoice(_fallback_policy()[0])
    policy = selectors.policy_by_reference(reference)
    if policy is not None:
        return PolicyChoice(policy)
    fallback, how = _fallback_policy()
    return PolicyChoice(fallback, (f"unknown escalation policy {str(reference)[:100]!r}; {how}",))


def pick_policy(reference: str | int | None) -> EscalationPolicy:
    return choose_policy(reference).policy


def _fallback_policy() -> tuple[EscalationPolicy, str]:
    """(policy, how it was chosen): the default, the seed's, else the oldest policy."""
    policy = EscalationPolicy.objects.filter(is_default=True).first() or ensure_seed_policy()
    if policy is not None:
        return policy, f"used the default policy {policy.name!r}"
    policy = EscalationPolicy.objects.order_by("pk").first()
    if policy is not None:
        return policy, f"no default policy is marked, so used {policy.name!r}, the oldest"
    logger.error("an alert was refused: there is no escalation policy at all")
    raise Unprocessable(
        "No escalation policy exists, so nobody can be called: create one (and mark it default) in the admin, "
        "or set PRIMARY_CONTACT.",
        code="no_escalation_policy",
        fields={"policy": "no escalation policy exists"},
    )


def record_intake_warnings(result: IngestResult, warnings: tuple[str, ...], *, actor: str) -> None:
    """Puts what went wrong with an accepted alert on the incident's timeline, beside the row that
    says what the alert did (opened the incident, or joined it)."""
    if not warnings or result.incident is None:
        return
    kind = EventKind.CREATED if result.created else EventKind.DEDUPLICATED
    for warning in warnings:
        record_event(result.incident, kind, actor=actor, message=f"Warning: {warning}", data={"warning": warning})


# --- ingestion ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    incident: Incident | None
    created: bool = False
    deduplicated: bool = False
    resolved: bool = False
    retriggered: bool = False


def open_incident(
    *,
    summary: str,
    source: str = Source.GENERIC,
    tts_text: str = "",
    severity: str = Severity.CRITICAL,
    dedup_key: str | None = None,
    policy: EscalationPolicy | None = None,
    payload: dict | None = None,
    actor: str = "system",
    is_drill: bool = False,
) -> IngestResult:
    """Finds the open incident with this dedup key, or opens one and queues its first call.

    Concurrent duplicates are safe: a partial unique index allows one open incident per key, so
    the loser of a race gets an IntegrityError, rolls back its savepoint, and joins the winner.
    """
    engine = escalation_engine()  # before any write: no engine, no incident
    policy = policy or pick_policy(None)
    payload = payload if payload is not None else {}
    joined = duplicates.join_as_duplicate(dedup_key, source=source, payload=payload, actor=actor)
    if joined is not None:
        return IngestResult(incident=joined, deduplicated=True)
    with transaction.atomic():
        existing = _open_incident_for(dedup_key)
        if existing is None:
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        summary=summary[:500],
                        tts_text=tts_text,
                        severity=severity,
                        source=source,
                        dedup_key=dedup_key or None,
                        policy=policy,
                        is_drill=is_drill,
                    )
            except IntegrityError:
                existing = _open_incident_for(dedup_key)
                if existing is None:
                    raise
            else:
                _INSERT_ALERT.create(incident=incident, source=source, payload=payload, received_by=actor)
                record_event(incident, EventKind.CREATED, actor=actor, message=summary[:500])
                incident_metrics.incident_opened(incident)
                engine.start(incident)
                return IngestResult(incident=incident, created=True)
        retrigger_reason = duplicates.retrigger_reason(existing)
        _INSERT_ALERT.create(
            incident=existing, source=source, payload=payload, received_by=actor, duplicate=not retrigger_reason
        )
        if retrigger_reason:
            engine.retrigger(existing, reason=retrigger_reason, actor=actor)
            return IngestResult(incident=existing, retriggered=True)
        return IngestResult(incident=existing, deduplicated=True)


def _open_incident_for(dedup_key: str | None) -> Incident | None:
    """The open incident of this key, locked (the partial unique index allows one)."""
    if not dedup_key:
        return None
    return _OPEN_INCIDENT_OF_KEY.first(dedup_key)


def _locked_rows():
    """Incidents locked FOR NO KEY UPDATE: a transition excludes other transitions, but not the
    inserts of alert and event rows that only need the incident to exist (FOR KEY SHARE)."""
    return Incident.objects.select_for_update(no_key=True, of=("self",))


# Compiled once per process (config.compiled_queries): every new incident and every alert the fast
# lane could not join runs it.
_OPEN_INCIDENT_OF_KEY = CompiledQuery(
    lambda key: _locked_rows().filter(dedup_key=key, state__in=OPEN_STATES).order_by(), "compiled-query-placeholder"
)


def resolve_by_dedup_key(*, dedup_key: str, source: str, payload: dict, actor: str) -> IngestResult:
    """A 'resolved' notification from a monitoring system: resolves the open incident, if any."""
    with transaction.atomic():
        incident = _open_incident_for(dedup_key)
        if incident is None:
            return IngestResult(incident=None)
        Alert.objects.create(incident=incident, source=source, status="resolved", payload=payload, received_by=actor)
        _resolve_locked(incident, actor=actor, message=f"resolved by {source}")
        return IngestResult(incident=incident, resolved=True)


# --- acknowledge, resolve -------------------------------------------------------------------------


def lock_incident(incident_id: int) -> Incident:
    try:
        return locked_incidents().get(pk=incident_id)
    except (Incident.DoesNotExist, ValueError, TypeError, ValidationError):
        raise NotFound(f"Incident {incident_id} does not exist.") from None


def locked_incidents() -> QuerySet[Incident]:
    """Incidents as lock_incident locks them (FOR NO KEY UPDATE, with their policy), for lookups of
    other apps: the engine locks an incident through one of its calls in one statement."""
    return _locked_rows().select_related("policy")


def acknowledge_locked(
    incident: Incident, *, actor: str, message: str = "", attempt: Any = None, via: str = ""
) -> bool:
    """Stops the escalation. Returns False when it was already acknowledged (idempotent). `via` is the
    channel it came through (API, admin, phone), kept on the timeline row."""
    if incident.state == IncidentState.ACKNOWLEDGED:
        return False
    if not can_transition(incident.state, IncidentState.ACKNOWLEDGED):
        raise DomainError(f"Incident #{incident.pk} is already {incident.state}.", code=f"already_{incident.state}")
    incident.state = IncidentState.ACKNOWLEDGED
    incident.acknowledged_at = timezone.now()
    incident.acknowledged_by = actor[:200]
    incident.next_action_at = None
    save_fields(incident, ["state", "acknowledged_at", "acknowledged_by", "next_action_at", "updated_at"])
    incident_metrics.incident_acknowledged(incident)
    via_data = {"via": via} if via else None
    record_event(incident, EventKind.ACKNOWLEDGED, actor=actor, message=message, attempt=attempt, data=via_data)
    audit.record(
        AuditAction.INCIDENT_ACKNOWLEDGED, actor=actor, target=f"incident:{incident.pk}", data={"how": message}
    )
    _notify(incident, "incident.acknowledged")
    if incident.is_drill:
        # A drill is done once someone acknowledged it: nobody is left to close it by hand.
        who = actor.removeprefix("contact:").removeprefix("user:")
        finish_drill_locked(incident, outcome="acknowledged", how=f"acknowledged by {who}")
    return True


def finish_drill_locked(incident: Incident, *, outcome: str, how: str) -> bool:
    """Resolves a drill that was acknowledged or exhausted, with a timeline row "drill finished: <how>".
    The drill's report still tells the outcome (from acknowledged_at / exhausted_reason). Does nothing to
    a real incident, or to a drill already resolved."""
    if not incident.is_drill:
        return False
    return _resolve_locked(
        incident, actor="system", message=f"drill finished: {how}"[:500], data={"drill_outcome": outcome}
    )


def acknowledge(incident_id: int, *, actor: str, via: str = "API") -> Incident:
    """`via` names the channel on the timeline ("acknowledged through the admin")."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        acknowledge_locked(incident, actor=actor, message=f"acknowledged through the {via}", via=via)
    return incident


def _resolve_locked(incident: Incident, *, actor: str, message: str, via: str = "", data: dict | None = None) -> bool:
    if incident.state == IncidentState.RESOLVED:
        return False
    incident.state = IncidentState.RESOLVED
    incident.resolved_at = timezone.now()
    incident.next_action_at = None
    incident.save(update_fields=["state", "resolved_at", "next_action_at", "updated_at"])
    incident_metrics.incident_resolved(incident)
    event_data = (data or {}) | ({"via": via} if via else {})
    record_event(incident, EventKind.RESOLVED, actor=actor, message=message, data=event_data or None)
    audit.record(AuditAction.INCIDENT_RESOLVED, actor=actor, target=f"incident:{incident.pk}", data={"how": message})
    _notify(incident, "incident.resolved")
    return True


def resolve(incident_id: int, *, actor: str, via: str = "API") -> Incident:
    with transaction.atomic():
        incident = lock_incident(incident_id)
        _resolve_locked(incident, actor=actor, message=f"resolved through the {via}", via=via)
    return incident


def _notify(incident: Incident, event: str) -> None:
    """Tells subscribed integrations (Slack, webhooks, email); delivery is queued after commit.
    Drills tell nobody."""
    from integrations.services import notify

    if incident.is_drill:
        return
    notify(event, incident_payload(incident), dedup_key=f"incident:{incident.pk}:{event}")


def incident_payload(incident: Incident) -> dict:
    return {
        "incident_id": incident.pk,
        "summary": incident.summary,
        "severity": incident.severity,
        "state": incident.state,
        "source": incident.source,
        "dedup_key": incident.dedup_key,
        "attempts": incident.current_step,
        "exhausted": incident.state == IncidentState.EXHAUSTED,
        "reason": incident.exhausted_reason,
        "acknowledged_by": incident.acknowledged_by,
        "policy": incident.policy.name,
        "url": f"{settings.PUBLIC_BASE_URL}/api/v1/incidents/{incident.pk}",
    }
