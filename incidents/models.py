"""Who we call (Contact), in which order (EscalationPolicy), and what happened (Incident, Alert,
IncidentEvent). The phone calls themselves belong to the engine (orchestrator), which depends on
this app and never the reverse."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

E164 = RegexValidator(
    regex=r"^\+[1-9]\d{6,14}$",
    message="Enter the number in E.164 form: '+' then the country code and number, e.g. +821012345678.",
    code="invalid_e164",
)


class Language(models.TextChoices):
    KOREAN = "ko-KR", "Korean"
    ENGLISH = "en-US", "English"


class Contact(models.Model):
    name = models.CharField(max_length=100, verbose_name=_("name"))
    phone = models.CharField(
        max_length=16, validators=[E164], help_text=_("E.164, e.g. +821012345678"), verbose_name=_("phone")
    )
    language = models.CharField(
        max_length=8, choices=Language.choices, default=Language.KOREAN, verbose_name=_("language")
    )
    active = models.BooleanField(default=True, verbose_name=_("active"))
    preferred_provider = models.CharField(
        max_length=20,
        blank=True,
        choices=[("", "No preference"), ("twilio", "Twilio"), ("vonage", "Vonage")],
        help_text=_("tried first when it is one of the configured carriers"),
        verbose_name=_("preferred provider"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"


class EscalationPolicy(models.Model):
    """Contacts in order; calls go round them (primary, secondary, primary, ...) until someone
    presses 1 or `max_attempts` calls have been placed."""

    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    contacts = models.ManyToManyField(
        Contact, through="PolicyContact", related_name="policies", verbose_name=_("contacts")
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("calls before giving up"),
        verbose_name=_("max attempts"),
    )
    ring_timeout_seconds = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(120)],
        help_text=_("how long each call rings"),
        verbose_name=_("ring timeout seconds"),
    )
    pause_seconds = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(600)],
        help_text=_("wait between a missed call and the next one"),
        verbose_name=_("pause seconds"),
    )
    message_repeats = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("times the message is spoken"),
        verbose_name=_("message repeats"),
    )
    record_calls = models.BooleanField(
        default=False,
        help_text=_(
            "ask the carrier to record each call, so a lead can hear what the on-call person heard and pressed"
        ),
        verbose_name=_("record calls"),
    )
    is_default = models.BooleanField(
        default=False, help_text=_("used when an alert names no policy"), verbose_name=_("default policy")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("escalation policy")
        verbose_name_plural = _("escalation policies")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_policy")
        ]

    def __str__(self) -> str:
        return self.name


class PolicyContact(models.Model):
    policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.CASCADE, related_name="members", verbose_name=_("policy")
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="memberships", verbose_name=_("contact")
    )
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))

    class Meta:
        verbose_name = _("policy contact")
        verbose_name_plural = _("policy contacts")
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["policy", "contact"], name="contact_once_per_policy")]

    def __str__(self) -> str:
        return f"{self.policy} #{self.position}: {self.contact}"


class Severity(models.TextChoices):
    CRITICAL = "critical", pgettext_lazy("severity", "Critical")
    HIGH = "high", pgettext_lazy("severity", "High")
    WARNING = "warning", pgettext_lazy("severity", "Warning")
    INFO = "info", pgettext_lazy("severity", "Info")


class Source(models.TextChoices):
    GENERIC = "generic", "Generic API"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    GRAFANA = "grafana", "Grafana"
    SEED = "seed", "Seed-compatible /webhook/start"
    MANUAL = "manual", "Manual"
    SOCIAL = "social", "Social message (Messenger, Instagram, X)"


class IncidentState(models.TextChoices):
    """The incident's one state. Only TRIGGERED rings phones; EXHAUSTED is open but silent (every
    call of the round was made and nobody pressed 1)."""

    # The labels are the words people read everywhere (admin badges and filters, the status page):
    # orchestrator/words.py shows them, translated.
    TRIGGERED = "triggered", pgettext_lazy("incident state", "Calling")
    EXHAUSTED = "exhausted", pgettext_lazy("incident state", "Exhausted: nobody answered")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("incident state", "Acknowledged")
    RESOLVED = "resolved", pgettext_lazy("incident state", "Resolved")


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
    summary = models.CharField(max_length=500, verbose_name=_("summary"))
    tts_text = models.TextField(
        blank=True, help_text=_("what the phone says; the summary when empty"), verbose_name=_("tts text")
    )
    severity = models.CharField(
        max_length=10, choices=Severity.choices, default=Severity.CRITICAL, verbose_name=_("severity")
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.GENERIC, verbose_name=_("source"))
    dedup_key = models.CharField(max_length=255, null=True, blank=True, verbose_name=_("dedup key"))
    policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.PROTECT, related_name="incidents", verbose_name=_("policy")
    )
    state = models.CharField(
        max_length=20, choices=IncidentState.choices, default=IncidentState.TRIGGERED, verbose_name=_("state")
    )
    is_drill = models.BooleanField(
        default=False, db_index=True, help_text=_("a test run: no fallback notifications"), verbose_name=_("drill")
    )
    exhausted_reason = models.CharField(max_length=300, blank=True, verbose_name=_("exhausted reason"))
    current_step = models.PositiveIntegerField(
        default=0, help_text=_("calls placed so far; guards every engine task"), verbose_name=_("current step")
    )
    round_started_step = models.PositiveIntegerField(
        default=0,
        help_text=_("current_step when this round of calls began (a re-trigger starts a new round)"),
        verbose_name=_("round started step"),
    )
    next_action_at = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("next action at"))
    countdown_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("when the countdown task on the broker looks at this incident next"),
        verbose_name=_("countdown at"),
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True, verbose_name=_("acknowledged at"))
    acknowledged_by = models.CharField(
        max_length=200, blank=True, help_text=_("who pressed 1, or who acknowledged"), verbose_name=_("acknowledged by")
    )
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
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

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("incident"))
    source = models.CharField(max_length=20, choices=Source.choices, verbose_name=_("source"))
    status = models.CharField(max_length=20, default="firing", verbose_name=_("status"))
    payload = models.JSONField(verbose_name=_("payload"))
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))
    received_by = models.CharField(max_length=200, blank=True, verbose_name=_("received by"))
    # joined an open incident and changed nothing: the timeline shows these as bursts (a count with
    # first and last seen), not one row each, so a storm of duplicates writes one row per alert
    duplicate = models.BooleanField(default=False, verbose_name=_("duplicate"))

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
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

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events", verbose_name=_("incident"))
    kind = models.CharField(max_length=20, choices=EventKind.choices, verbose_name=_("kind"))
    actor = models.CharField(max_length=200, default="system", verbose_name=_("actor"))
    message = models.CharField(max_length=500, blank=True, verbose_name=_("message"))
    # Which call the event is about: the engine's CallAttempt id. A plain column, not a foreign key,
    # so the record does not depend on the engine; the engine resolves it (e.g. to the call's step).
    attempt_id = models.BigIntegerField(null=True, blank=True, db_index=True, verbose_name=_("attempt id"))
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))
    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("at"))

    class Meta:
        verbose_name = _("incident event")
        verbose_name_plural = _("incident events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"#{self.incident_id} {self.kind} by {self.actor}"
