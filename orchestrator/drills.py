"""Drills: a test incident through the real carriers (or the simulator), to prove a policy works
before the night it matters. A drill is marked as such everywhere and never sends fallbacks."""

from __future__ import annotations

from typing import Any

from accounts import audit
from accounts.models import AuditAction
from config.errors import NotFound
from incidents.models import Contact, EscalationPolicy, Incident, IncidentState, PolicyContact, Source
from incidents.services import create_policy, open_incident
from orchestrator.models import CallAttempt

DRILL_TEXT = "이것은 훈련 전화입니다. This is a drill. 당직 정책 {name} 점검 중입니다."


def start_drill(policy: EscalationPolicy, *, actor: Any = None) -> Incident:
    incident = open_incident(
        summary=f"[DRILL] {policy.name}",
        tts_text=DRILL_TEXT.format(name=policy.name),
        source=Source.MANUAL,
        policy=policy,
        payload={"drill": True, "policy": policy.name},
        actor=audit.actor_name(actor),
        is_drill=True,
    ).incident
    audit.record(AuditAction.DRILL_STARTED, actor=actor, target=f"policy:{policy.name}", data={"incident": incident.pk})
    return incident


TEST_CALL_PREFIX = "test call: "


def test_call_policy(contact: Contact) -> EscalationPolicy:
    """The one-contact policy a test call uses: named "test call: <name> (#<id>)", never the default,
    one call, this contact only. Kept and reused (an incident needs its policy), so the policy list
    shows plainly which policies are test calls."""
    name = f"{TEST_CALL_PREFIX}{contact.name} (#{contact.pk})"[:100]
    policy = EscalationPolicy.objects.filter(name=name).first()
    if policy is None:
        return create_policy(name=name, contacts=[contact], is_default=False, max_attempts=1)
    if list(policy.members.values_list("contact_id", flat=True)) != [contact.pk] or policy.max_attempts != 1:
        PolicyContact.objects.filter(policy=policy).exclude(contact=contact).delete()
        PolicyContact.objects.get_or_create(policy=policy, contact=contact, defaults={"position": 0})
        EscalationPolicy.objects.filter(pk=policy.pk).update(max_attempts=1, is_default=False)
        policy.refresh_from_db()
    return policy


def start_test_call(contact: Contact, *, actor: Any = None) -> Incident:
    """A one-contact drill: one call to this person, marked DRILL, no fallbacks."""
    return start_drill(test_call_policy(contact), actor=actor)


def _ms(later, earlier) -> int | None:
    return round((later - earlier).total_seconds() * 1000) if later and earlier else None


def drill_outcome(incident: Incident) -> str:
    """What the drill proved. A finished drill is resolved at once (incidents.services.finish_drill_locked),
    so the outcome comes from what happened, not from the final state."""
    if incident.acknowledged_at is not None:
        return "acknowledged"
    if incident.exhausted_reason:
        return "exhausted"
    if incident.state == IncidentState.RESOLVED:
        return "resolved"  # closed by hand before anyone answered
    return "in_progress"


def drill_report(incident_id: int) -> dict:
    """Who answered, which digit, which carrier, and how long each step took."""
    incident = Incident.objects.select_related("policy").filter(pk=incident_id, is_drill=True).first()
    if incident is None:
        raise NotFound(f"Drill {incident_id} does not exist.")
    attempts = list(CallAttempt.objects.filter(incident=incident).select_related("contact").order_by("step"))
    acknowledging = next((attempt for attempt in attempts if "1" in attempt.digits), None)
    first_dialed = next((attempt.dialed_at for attempt in attempts if attempt.dialed_at), None)
    return {
        "incident_id": incident.pk,
        "policy": incident.policy.name,
        "is_drill": True,
        "outcome": drill_outcome(incident),
        "exhausted_reason": incident.exhausted_reason,
        "acknowledged_by": acknowledging.contact.name if acknowledging else None,
        "digit": "1" if acknowledging else None,
        "carrier": acknowledging.provider if acknowledging else None,
        "timings_ms": {
            "to_first_dial": _ms(first_dialed, incident.created_at),
            "to_answer": _ms(acknowledging.answered_at, incident.created_at) if acknowledging else None,
            "to_acknowledge": _ms(incident.acknowledged_at, incident.created_at),
        },
        "attempts": [
            {
                "step": attempt.step,
                "contact": attempt.contact.name,
                "number": attempt.to_number,
                "carrier": attempt.provider,
                "status": attempt.status,
                "answered_by": attempt.answered_by or None,
                "digits": attempt.digits,
                "error": attempt.error,
                "dialed_after_ms": _ms(attempt.dialed_at, incident.created_at),
                "call_seconds": round((attempt.ended_at - attempt.answered_at).total_seconds(), 1)
                if attempt.ended_at and attempt.answered_at
                else None,
            }
            for attempt in attempts
        ],
    }
