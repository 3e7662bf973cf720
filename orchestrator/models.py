"""One phone call placed for one escalation step."""

from __future__ import annotations

import secrets

from django.db import models


def new_attempt_token() -> str:
    """Unguessable, in every webhook URL of the attempt: a callback names its attempt by it."""
    return secrets.token_urlsafe(24)


class AttemptStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DIALING = "dialing", "Dialing"
    INITIATED = "initiated", "Initiated"
    RINGING = "ringing", "Ringing"
    IN_PROGRESS = "in_progress", "Answered"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


# Status only moves forward: a late or repeated callback never takes an attempt back.
STATUS_RANK = {
    AttemptStatus.QUEUED: 0,
    AttemptStatus.DIALING: 1,
    AttemptStatus.INITIATED: 2,
    AttemptStatus.RINGING: 3,
    AttemptStatus.IN_PROGRESS: 4,
}
FINAL_STATUSES = frozenset(
    {AttemptStatus.COMPLETED, AttemptStatus.BUSY, AttemptStatus.NO_ANSWER, AttemptStatus.FAILED, AttemptStatus.CANCELED}
)
for _final in FINAL_STATUSES:
    STATUS_RANK[_final] = 5


class AnsweredBy(models.TextChoices):
    UNKNOWN = "", "Unknown"
    HUMAN = "human", "Human"
    MACHINE = "machine", "Machine"


class CallAttempt(models.Model):
    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="attempts")
    step = models.PositiveIntegerField(help_text="1 for the first call of the incident, 2 for the next, ...")
    contact = models.ForeignKey("incidents.Contact", on_delete=models.PROTECT, related_name="attempts")
    to_number = models.CharField(max_length=16)
    provider = models.CharField(max_length=20, blank=True)
    provider_call_id = models.CharField(max_length=64, blank=True, db_index=True)
    token = models.CharField(max_length=64, unique=True, default=new_attempt_token, editable=False)
    status = models.CharField(max_length=20, choices=AttemptStatus.choices, default=AttemptStatus.QUEUED)
    answered_by = models.CharField(max_length=10, choices=AnsweredBy.choices, blank=True, default="")
    digits = models.CharField(max_length=32, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dial_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="when a dial task was last sent for it (re-sends are spaced by this)"
    )
    dial_started_at = models.DateTimeField(null=True, blank=True)
    dialed_at = models.DateTimeField(null=True, blank=True, help_text="when the carrier accepted the call")
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["incident_id", "step"]
        constraints = [models.UniqueConstraint(fields=["incident", "step"], name="one_attempt_per_step")]
        indexes = [models.Index(fields=["status", "created_at"], name="attempt_status_idx")]

    def __str__(self) -> str:
        return f"#{self.incident_id} step {self.step} → {self.to_number} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
