"""Integrations (external systems we send to), the messages we owe them, and every delivery attempt."""

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
    "recording.stored",
    "alert_rule.firing",
    "alert_rule.resolved",
    "payment.status_changed",
)
# The languages texts for people (Slack, email, SMS, push) are written in: options["language"].
MESSAGE_LANGUAGES = ("ko", "en")
DEFAULT_MESSAGE_LANGUAGE = "ko"
# Sent from the admin to check an integration; it reaches the integration even while it is inactive.
TEST_EVENT = "integration.test"
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class IntegrationType(models.TextChoices):
    CRM = "crm", _("CRM")
    PAYMENT = "payment", _("Payment")
    NOTIFICATION = "notification", _("Notification")
    SOCIAL = "social", _("Social")
    WEBHOOK = "webhook", _("Webhook")


class AuthType(models.TextChoices):
    NONE = "none", _("None")
    API_KEY = "api_key", _("API key")
    BASIC = "basic", _("HTTP basic")
    BEARER = "bearer", _("Bearer token")
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", _("OAuth2 client credentials")
    OAUTH2_JWT_BEARER = "oauth2_jwt_bearer", _("OAuth2 JWT bearer")
    SERVICE_ACCOUNT = "service_account", _("Service account (JWT bearer)")
    OAUTH2_REFRESH_TOKEN = "oauth2_refresh_token", _("OAuth2 user context (refresh token)")
    OAUTH1 = "oauth1", _("OAuth 1.0a (signed requests)")


INTEGRATION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class Integration(models.Model):
    """An external system we talk to (the seed's IntegrationConfig). `auth_config` is a dict of
    credentials kept sealed (AES-GCM, see integrations.credentials): `auth_config_sealed` holds the
    ciphertext and `auth_config_keys` only the names of what is set, so pages and lists can say
    "client_secret: set" without ever opening it."""

    integration_id = models.CharField(
        max_length=100,
        unique=True,
        help_text=_("The caller's stable slug, e.g. crm_salesforce (lower case, digits, _ and -)."),
        verbose_name=_("integration id"),
    )
    name = models.CharField(max_length=100, verbose_name=_("name"))
    type = models.CharField(max_length=20, choices=IntegrationType.choices, verbose_name=_("type"))
    provider = models.CharField(
        max_length=50, help_text=_("The provider module that speaks to it, e.g. webhook."), verbose_name=_("provider")
    )
    endpoint_url = models.CharField(
        max_length=2000,
        blank=True,
        help_text=_("The base URL requests go to (a webhook's or Slack's URL). Blank for SMTP."),
        verbose_name=_("endpoint URL"),
    )
    auth_type = models.CharField(
        max_length=40, choices=AuthType.choices, default=AuthType.NONE, verbose_name=_("auth type")
    )
    auth_config_sealed = models.TextField(blank=True, editable=False, verbose_name=_("auth config (encrypted)"))
    auth_config_keys = models.JSONField(default=list, blank=True, editable=False, verbose_name=_("auth config keys"))
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Provider settings that are not secret, e.g. {"to": ["ops@example.com"]} for SMTP.'),
        verbose_name=_("options"),
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
        help_text=_("Tries per message before it is dead-lettered."),
        verbose_name=_("max attempts"),
    )
    rate_limit_per_second = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text=_("Messages per second to this integration, shared by every worker (blank: the default)."),
        verbose_name=_("rate limit per second"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.integration_id})"

    def clean(self) -> None:
        from integrations import providers  # the providers import this module

        errors: dict[str, str] = {}
        if self.events is None:  # the admin's empty box: every event
            self.events = []
        if not INTEGRATION_ID.match(self.integration_id or ""):
            errors["integration_id"] = "Use 1-100 lower-case letters, digits, _ or -, starting with a letter or digit."
        provider = providers.PROVIDERS.get(self.provider)
        if provider is None:
            errors["provider"] = f"Unknown provider; choose one of: {', '.join(sorted(providers.PROVIDERS))}."
        else:
            errors.update(provider.check_integration(self))
        if not isinstance(self.events, list) or not all(
            isinstance(name, str) and EVENT_NAME.match(name) for name in self.events
        ):
            errors["events"] = 'Enter a list of event names such as ["incident.exhausted"], or [] for every event.'
        if not isinstance(self.options, dict):
            errors["options"] = "Enter a JSON object."
        elif self.options.get("language", DEFAULT_MESSAGE_LANGUAGE) not in MESSAGE_LANGUAGES:
            problem = f"options.language must be one of: {', '.join(MESSAGE_LANGUAGES)} (Korean when unset)."
            errors["options"] = f"{errors['options']} {problem}" if "options" in errors else problem
        problem = self.check_auth_config()
        if problem:
            errors["auth_config"] = problem
        if errors:
            raise ValidationError(errors)

    def check_endpoint_url(self) -> str | None:
        """Why endpoint_url cannot be a target (not http(s), or an address the SSRF guard refuses)."""
        try:
            URLValidator(schemes=["http", "https"])(self.endpoint_url)
        except ValidationError:
            return "Enter an http(s) URL."
        try:
            outbound.check_url(self.endpoint_url)
        except outbound.BlockedDestination as exc:
            return str(exc)
        return None

    def check_auth_config(self) -> str | None:
        """Why the credentials do not fit auth_type (naming keys, never values), or None."""
        from integrations import auth, credentials

        try:
            config = self.auth_config
        except credentials.CredentialError as exc:
            return str(exc)
        missing = auth.missing_keys(self.auth_type, config)
        if missing:
            return f"auth_type {self.auth_type} needs auth_config keys: {', '.join(missing)}."
        for url in auth.token_urls(self.auth_type, config):
            try:
                URLValidator(schemes=["http", "https"])(url)
                outbound.check_url(url)
            except ValidationError:
                return "The token URL must be an http(s) URL."
            except outbound.BlockedDestination as exc:
                return f"Token URL: {exc}"
        return None

    @property
    def recipients(self) -> list[str]:
        """Email providers: the addresses in options["to"] (a list, or one comma-separated string)."""
        to = (self.options or {}).get("to") or []
        if isinstance(to, str):
            to = to.split(",")
        return [str(address).strip() for address in to if str(address).strip()]

    def check_recipients(self) -> str | None:
        if not self.recipients:
            return 'Enter at least one email address. Put them in options, e.g. {"to": ["ops@example.com"]}.'
        for address in self.recipients:
            try:
                validate_email(address)
            except ValidationError:
                return f"Not an email address: {address}"
        return None

    def subscribes_to(self, event: str) -> bool:
        return not self.events or event in self.events

    @property
    def auth_config(self) -> dict:
        """The credentials, opened (never log or show this; see `shown_auth_config`)."""
        from integrations import credentials

        return credentials.open_config(self.auth_config_sealed)

    def set_auth_config(self, config: dict) -> None:
        from integrations import credentials

        config = {key: value for key, value in (config or {}).items() if value not in (None, "")}
        self.auth_config_sealed = credentials.seal_config(config)
        self.auth_config_keys = sorted(config)

    def shown_auth_config(self) -> dict:
        """Public values (client_id, token_url, ...) as they are, every secret as "••••"."""
        from integrations import credentials

        try:
            public = credentials.public_part(self.auth_config)
        except Exception:  # a page must render even when the key ring does not open the config
            public = {}
        return credentials.masked(self.auth_config_keys or [], public)

    @property
    def breaker_name(self) -> str:
        return f"integration:{self.integration_id}"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"  # a permanent error: retrying cannot help
    DEAD = "dead", "Dead-lettered"  # every attempt failed; retry or replay it by hand


class MessageType(models.TextChoices):
    SYNC = "sync", "Synchronous"
    ASYNC = "async", "Asynchronous"


class OutboundMessage(models.Model):
    """One message owed to one integration: one of our events, or a provider method called through the
    API. (integration, dedup_key) is unique, so a caller that runs twice (a retried task, a repeated
    webhook, an API caller re-sending with its idempotency key) never sends twice."""

    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, related_name="messages", verbose_name=_("integration")
    )
    event = models.CharField(max_length=100, db_index=True, verbose_name=_("event"))
    dedup_key = models.CharField(max_length=200, verbose_name=_("dedup key"))
    method = models.CharField(
        max_length=50, blank=True, help_text=_("The provider method called."), verbose_name=_("method")
    )
    message_type = models.CharField(
        max_length=10, choices=MessageType.choices, default=MessageType.ASYNC, verbose_name=_("message type")
    )
    idempotency_key = models.CharField(max_length=200, blank=True, verbose_name=_("idempotency key"))
    result = models.JSONField(
        null=True,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text=_("What the provider answered."),
        verbose_name=_("result"),
    )
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
        return f"{self.method or self.event} → {self.integration.name} ({self.status})"


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
    excerpt = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The start of the provider's answer, scrubbed."),
        verbose_name=_("excerpt"),
    )
    request_id = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("The id the provider knows this call by (an idempotency key, a transaction id)."),
        verbose_name=_("request id"),
    )

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
