"""One phone call placed for one escalation step."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _


def new_attempt_token() -> str:
    """Unguessable, in every webhook URL of the attempt: a callback names its attempt by it."""
    return secrets.token_urlsafe(24)


class AttemptStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    DIALING = "dialing", _("Dialing")
    INITIATED = "initiated", _("Initiated")
    RINGING = "ringing", _("Ringing")
    IN_PROGRESS = "in_progress", _("Answered")
    COMPLETED = "completed", _("Completed")
    BUSY = "busy", _("Busy")
    NO_ANSWER = "no_answer", _("No answer")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")


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
    UNKNOWN = "", _("Unknown")
    HUMAN = "human", _("Human")
    MACHINE = "machine", _("Machine")


class CallAttempt(models.Model):
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="attempts", verbose_name=_("incident")
    )
    step = models.PositiveIntegerField(
        help_text=_("1 for the first call of the incident, 2 for the next, ..."), verbose_name=_("step")
    )
    contact = models.ForeignKey(
        "incidents.Contact", on_delete=models.PROTECT, related_name="attempts", verbose_name=_("contact")
    )
    to_number = models.CharField(max_length=16, verbose_name=_("to number"))
    provider = models.CharField(max_length=20, blank=True, verbose_name=_("provider"))
    provider_call_id = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("provider call id"))
    token = models.CharField(
        max_length=64, unique=True, default=new_attempt_token, editable=False, verbose_name=_("token")
    )
    status = models.CharField(
        max_length=20, choices=AttemptStatus.choices, default=AttemptStatus.QUEUED, verbose_name=_("status")
    )
    answered_by = models.CharField(
        max_length=10, choices=AnsweredBy.choices, blank=True, default="", verbose_name=_("answered by")
    )
    digits = models.CharField(max_length=32, blank=True, verbose_name=_("digits"))
    error = models.CharField(max_length=500, blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    dial_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("when a dial task was last sent for it (re-sends are spaced by this)"),
        verbose_name=_("dial sent at"),
    )
    dial_started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("dial started at"))
    redials = models.PositiveSmallIntegerField(
        default=0,
        help_text=_("times it was dialed again because no carrier had the call a worker claimed"),
        verbose_name=_("redials"),
    )
    dialed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("when the carrier accepted the call"), verbose_name=_("dialed at")
    )
    answered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("answered at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))

    class Meta:
        verbose_name = _("call attempt")
        verbose_name_plural = _("call attempts")
        ordering = ["incident_id", "step"]
        constraints = [models.UniqueConstraint(fields=["incident", "step"], name="one_attempt_per_step")]
        indexes = [models.Index(fields=["status", "created_at"], name="attempt_status_idx")]

    def __str__(self) -> str:
        return f"#{self.incident_id} step {self.step} → {self.to_number} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
