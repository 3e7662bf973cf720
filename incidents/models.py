"""Who we call (Contact), in which order (EscalationPolicy), and what happened (Incident, Alert,
IncidentEvent). The phone calls themselves belong to the engine (orchestrator), which depends on
this app and never the reverse."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

E164 = RegexValidator(
    regex=r"^\+[1-9]\d{6,14}$",
    message="Enter the number in E.164 form: '+' then the country code and number, e.g. +821012345678.",
    code="invalid_e164",
)


class Language(models.TextChoices):
    KOREAN = "ko-KR", "Korean"
    ENGLISH = "en-US", "English"


class Contact(models.Model):
    name = models.CharField(max_length=100)
    phone = models.CharField(max_length=16, validators=[E164], help_text="E.164, e.g. +821012345678")
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.KOREAN)
    active = models.BooleanField(default=True)
    preferred_provider = models.CharField(
        max_length=20,
        blank=True,
        choices=[("", "No preference"), ("twilio", "Twilio"), ("vonage", "Vonage")],
        help_text="tried first when it is one of the configured carriers",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"


class EscalationPolicy(models.Model):
    """Contacts in order; calls go round them (primary, secondary, primary, ...) until someone
    presses 1 or `max_attempts` calls have been placed."""

    name = models.CharField(max_length=100, unique=True)
    contacts = models.ManyToManyField(Contact, through="PolicyContact", related_name="policies")
    max_attempts = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(50)], help_text="calls before giving up"
    )
    ring_timeout_seconds = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(120)], help_text="how long each call rings"
    )
    pause_seconds = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(600)], help_text="wait between a missed call and the next one"
    )
    message_repeats = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(10)], help_text="times the message is spoken"
    )
    is_default = models.BooleanField(default=False, help_text="used when an alert names no policy")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "escalation policies"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_policy")
        ]

    def __str__(self) -> str:
        return self.name


class PolicyContact(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="memberships")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["policy", "contact"], name="contact_once_per_policy")]

    def __str__(self) -> str:
        return f"{self.policy} #{self.position}: {self.contact}"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class Source(models.TextChoices):
    GENERIC = "generic", "Generic API"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    GRAFANA = "grafana", "Grafana"
    SEED = "seed", "Seed-compatible /webhook/start"
    MANUAL = "manual", "Manual"


class IncidentState(models.TextChoices):
    """The incident's one state. Only TRIGGERED rings phones; EXHAUSTED is open but silent (every
    call of the round was made and nobody pressed 1)."""

    TRIGGERED = "triggered", "Triggered"
    EXHAUSTED = "exhausted", "Exhausted"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN_STATES = (IncidentState.TRIGGERED, IncidentState.EXHAUSTED, IncidentState.ACKNOWLEDGED)

# Every allowed move, in one place. Back to TRIGGERED is a re-trigger: a new firing alert after
# exhaustion, or after an acknowledgement older than ALERT_RETRIGGER_AFTER_ACK_MINUTES.
TRANSITIONS: dict[str, frozenset[str]] = {
    IncidentState.TRIGGERED: frozenset({IncidentState.EXHAUSTED, IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED}),
    IncidentState.EXHAUSTED: frozenset({IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED}),
    IncidentState.ACKNOWLEDGED: frozenset({IncidentState.TRIGGERED, IncidentState.RESOLVED}),
    IncidentState.RESOLVED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


class Incident(models.Model):
    summary = models.CharField(max_length=500)
    tts_text = models.TextField(blank=True, help_text="what the phone says; the summary when empty")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.CRITICAL)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.GENERIC)
    dedup_key = models.CharField(max_length=255, null=True, blank=True)
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.PROTECT, related_name="incidents")
    state = models.CharField(max_length=20, choices=IncidentState.choices, default=IncidentState.TRIGGERED)
    is_drill = models.BooleanField(default=False, db_index=True, help_text="a test run: no fallback notifications")
    exhausted_reason = models.CharField(max_length=300, blank=True)
    current_step = models.PositiveIntegerField(default=0, help_text="calls placed so far; guards every engine task")
    round_started_step = models.PositiveIntegerField(
        default=0, help_text="current_step when this round of calls began (a re-trigger starts a new round)"
    )
    next_action_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True, help_text="who pressed 1, or who acknowledged")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # At most one open incident per dedup key: concurrent duplicates cannot both insert.
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=Q(dedup_key__isnull=False) & ~Q(state="resolved"),
                name="one_open_incident_per_dedup_key",
            )
        ]
        indexes = [models.Index(fields=["state", "next_action_at"], name="incident_due_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"

    @property
    def spoken_text(self) -> str:
        return self.tts_text or self.summary

    @property
    def exhausted(self) -> bool:
        return self.state == IncidentState.EXHAUSTED

    def calls_at(self, step: int) -> bool:
        """The one predicate every engine entry point checks: this incident is still ringing phones,
        and `step` is its current call. A late or redelivered task fails it and does nothing."""
        return self.state == IncidentState.TRIGGERED and self.current_step == step

    @property
    def calls_in_round(self) -> int:
        return self.current_step - self.round_started_step


class Alert(models.Model):
    """Every payload received, raw, attached to the incident it opened, joined or resolved."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alerts")
    source = models.CharField(max_length=20, choices=Source.choices)
    status = models.CharField(max_length=20, default="firing")
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    received_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["received_at", "pk"]

    def __str__(self) -> str:
        return f"{self.source} alert for incident #{self.incident_id}"


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    DEDUPLICATED = "deduplicated", "Duplicate alert"
    CALL_QUEUED = "call_queued", "Call queued"
    DIALING = "dialing", "Dialing"
    DIAL_FAILED = "dial_failed", "Dial failed"
    RINGING = "ringing", "Ringing"
    ANSWERED = "answered", "Answered"
    MACHINE = "machine", "Answering machine"
    DIGIT_PRESSED = "digit_pressed", "Digit pressed"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    CALL_ENDED = "call_ended", "Call ended"
    ESCALATED = "escalated", "Escalated"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    EXHAUSTED = "exhausted", "Exhausted"
    RETRIGGERED = "retriggered", "Re-triggered"
    DIAL_DELAYED = "dial_delayed", "Dial delayed"
    NOTIFIED = "notified", "Fallback notification"


class IncidentEvent(models.Model):
    """The timeline: every change to an incident, with who did it and when."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    actor = models.CharField(max_length=200, default="system")
    message = models.CharField(max_length=500, blank=True)
    # Which call the event is about: the engine's CallAttempt id. A plain column, not a foreign key,
    # so the record does not depend on the engine; the engine resolves it (e.g. to the call's step).
    attempt_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"#{self.incident_id} {self.kind} by {self.actor}"
