"""The engine as the record sees it: incidents.services calls these when an alert opens or re-fires an
incident. Registered by OrchestratorConfig.ready(), so `incidents` never imports `orchestrator`."""

from __future__ import annotations

from incidents.models import Incident
from orchestrator.models import CallAttempt
from orchestrator.services import retrigger_locked, start_escalation


class PhoneEscalation:
    """Rings the policy's contacts, one after another, until someone presses 1."""

    def start(self, incident: Incident) -> CallAttempt | None:
        return start_escalation(incident)

    def retrigger(self, incident: Incident, *, reason: str, actor: str) -> CallAttempt | None:
        return retrigger_locked(incident, reason=reason, actor=actor)
