"""Integrations (where notifications go), the messages we owe them, and every delivery attempt."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator, validate_email
from django.db import models
from django.utils.translation import gettext_lazy as _

from config import outbound

# Events other apps publish. An integration may also name an event not listed here (a new app can
# publish one without a change in this app); the list feeds the admin's help text.
KNOWN_EVENTS = (
    "incident.triggered",
    "incident.acknowledged",
    "incident.resolved",
    "incident.exhausted",
    "drill.completed",
)
# Sent from the admin to check an integration; it reaches the integration even while it is inactive.
TEST_EVENT = "integration.test"
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class IntegrationKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (signed JSON POST)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email (SMTP)"


class Integration(models.Model):
    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    kind = models.CharField(max_length=20, choices=IntegrationKind.choices, verbose_name=_("kind"))
    target = models.CharField(
        max_length=2000,
        help_text=_("The URL for a webhook or Slack; comma-separated addresses for email."),
        verbose_name=_("target"),
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Webhooks only: signs each body (X-Oncall-Signature: sha256=<HMAC>). Blank sends unsigned."),
        verbose_name=_("secret"),
    )
    events = models.JSONField(
        default=list,
        blank=True,
        help_text='A JSON list of event names, e.g. ["incident.exhausted"]; [] means every event. '
        f"Known events: {', '.join(KNOWN_EVENTS)}.",
        verbose_name=_("events"),
    )
    active = models.BooleanField(
        default=True, help_text=_("Inactive integrations get no new messages."), verbose_name=_("active")
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=6,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text=_("Tries per message before it is marked failed."),
        verbose_name=_("max attempts"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.events is None:  # the admin's empty box: every event
            self.events = []
        if self.kind in (IntegrationKind.WEBHOOK, IntegrationKind.SLACK):
            try:
                URLValidator(schemes=["http", "https"])(self.target)
            except ValidationError:
                errors["target"] = "Enter an http(s) URL."
            else:
                try:
                    outbound.check_url(self.target)
                except outbound.BlockedDestination as exc:
                    errors["target"] = str(exc)
        elif self.kind == IntegrationKind.EMAIL:
            if not self.recipients:
                errors["target"] = "Enter at least one email address."
            for address in self.recipients:
                try:
                    validate_email(address)
                except ValidationError:
                    errors["target"] = f"Not an email address: {address}"
        if not isinstance(self.events, list) or not all(
            isinstance(name, str) and EVENT_NAME.match(name) for name in self.events
        ):
            errors["events"] = 'Enter a list of event names such as ["incident.exhausted"], or [] for every event.'
        if errors:
            raise ValidationError(errors)

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.target.split(",") if address.strip()]

    def subscribes_to(self, event: str) -> bool:
        return not self.events or event in self.events


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class OutboundMessage(models.Model):
    """One notification owed to one integration. (integration, dedup_key) is unique, so a caller that
    runs twice (a retried task, a repeated webhook) never notifies twice."""

    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, related_name="messages", verbose_name=_("integration")
    )
    event = models.CharField(max_length=100, db_index=True, verbose_name=_("event"))
    dedup_key = models.CharField(max_length=200, verbose_name=_("dedup key"))
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder, verbose_name=_("payload"))
    status = models.CharField(
        max_length=20, choices=MessageStatus.choices, default=MessageStatus.PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text=_("Tries since the message was created or retried."), verbose_name=_("attempts")
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a worker started the current try."), verbose_name=_("claimed at")
    )
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "dedup_key"], name="integrations_message_once_per_key"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="integrations_msg_due"),
            models.Index(fields=["dedup_key"], name="integrations_msg_dedup"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.integration.name} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at sending a message. A row whose finished_at is empty is a try still running, or one
    a dead worker never finished (the sweep closes those)."""

    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="delivery_attempts", verbose_name=_("message")
    )
    number = models.PositiveIntegerField(verbose_name=_("number"))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    ok = models.BooleanField(default=False, verbose_name=_("ok"))
    http_status = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("http status"))
    error = models.TextField(blank=True, verbose_name=_("error"))

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["message_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="integrations_attempt_number_once"),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else ("running" if self.finished_at is None else "failed")
        return f"attempt {self.number} of message {self.message_id}: {outcome}"
