"""Admins configure integrations and watch what was sent; history is read-only, and a failed or
dead-lettered message can be retried."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy

from accounts.admin import AuditedAdmin
from accounts.models import AuditAction
from config import outbound
from integrations import credentials, providers, registry, services
from integrations.models import KNOWN_EVENTS, DeliveryAttempt, Integration, OutboundMessage
from integrations.registry import CredentialChange


class EventChoiceField(forms.MultipleChoiceField):
    """Ticked event names; an empty value (no box ticked) is every event."""

    def to_python(self, value):
        return [name for name in super().to_python(value) if name]


class WriteOnlyJSONField(forms.JSONField):
    """Credentials are never shown back: an empty box (not the word "null") waits for new ones."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class IntegrationForm(forms.ModelForm):
    """Credentials are write-only: the endpoint URL (a Slack URL's path is its credential, many webhook
    URLs carry a token), the signing secret and the auth config. A page's HTML travels to browsers,
    caches and screenshots, so it shows only scheme://host/… of the URL and which auth keys are set
    ("client_secret: ••••"). Leaving a field blank keeps what is stored; auth config keys given are
    merged into the stored ones (null removes one)."""

    provider = forms.ChoiceField(label=gettext_lazy("Provider"))
    endpoint_url = forms.CharField(required=False, max_length=2000, label=gettext_lazy("Endpoint URL"))
    signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="Signing secret",
    )
    clear_signing_secret = forms.BooleanField(required=False, label="Remove the signing secret")
    auth_config = WriteOnlyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label=gettext_lazy("Auth config"),
    )
    clear_auth_config = forms.BooleanField(required=False, label="Remove every stored credential")
    events = EventChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Events"),
        help_text=gettext_lazy(
            "Tick what this integration receives. None ticked (the default): every event, "
            "incident.exhausted fallbacks included."
        ),
    )

    class Meta:
        model = Integration
        fields = [
            "integration_id",
            "name",
            "type",
            "provider",
            "endpoint_url",
            "auth_type",
            "auth_config",
            "clear_auth_config",
            "signing_secret",
            "clear_signing_secret",
            "options",
            "events",
            "active",
            "max_attempts",
            "rate_limit_per_second",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance if self.instance.pk else None
        self.fields["provider"].choices = [(name, name) for name in sorted(providers.PROVIDERS)]
        # the known events, and any other name an integration already subscribes to (kept, not dropped)
        extra = [name for name in (stored.events if stored else []) or [] if name not in KNOWN_EVENTS]
        self.fields["events"].choices = [(name, name) for name in (*KNOWN_EVENTS, *extra)]
        keys = (stored.auth_config_keys if stored else []) or []
        self.initial["auth_config"] = None
        self.initial["signing_secret"] = ""
        self.fields["signing_secret"].help_text = "Webhooks: signs each body (X-Oncall-Signature: sha256=<HMAC>). " + (
            "A secret is set; leave blank to keep it." if "signing_secret" in keys else "None is set."
        )
        shown = ", ".join(f"{key}: {value}" for key, value in stored.shown_auth_config().items()) if stored else ""
        self.fields["auth_config"].help_text = (
            'Credentials as JSON, e.g. {"client_id": "...", "client_secret": "...", "token_url": "https://..."}; '
            "stored encrypted and never shown again. "
            + (f"Set: {shown}. Keys given here replace those; null removes one." if shown else "None is set.")
        )
        url_help = "Where requests go (a webhook's or Slack's URL). Blank for SMTP."
        if stored is not None and stored.endpoint_url:
            self.initial["endpoint_url"] = ""
            where = outbound.redact_url(stored.endpoint_url)
            url_help = f"Stored: {where} (hidden). Leave blank to keep it, or enter a new URL."
        self.fields["endpoint_url"].help_text = url_help

    def clean(self):
        cleaned = super().clean()
        stored = Integration.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        if stored is not None and not cleaned.get("endpoint_url") and cleaned.get("provider") == stored.provider:
            cleaned["endpoint_url"] = stored.endpoint_url  # a new provider needs its own URL: blank is refused
        given = cleaned.get("auth_config")
        if given not in (None, "") and not isinstance(given, dict):
            self.add_error("auth_config", "Enter a JSON object.")
            return cleaned
        given = dict(given or {})
        removed: tuple[str, ...] = ()
        if cleaned.get("clear_signing_secret"):
            removed = ("signing_secret",)
        elif cleaned.get("signing_secret"):
            given["signing_secret"] = cleaned["signing_secret"]
        clear = bool(cleaned.get("clear_auth_config"))
        # applied again to what is stored when saving (registry.store_changes), under the row's lock
        self.credential_change = (
            CredentialChange(clear=clear, given=given, removed=removed) if (clear or given or removed) else None
        )
        stored_config = stored.auth_config if stored is not None else {}
        self.instance.set_auth_config((self.credential_change or CredentialChange()).applied_to(stored_config))
        return cleaned


@admin.register(Integration)
class IntegrationAdmin(AuditedAdmin):
    audit_action = AuditAction.INTEGRATION_CHANGED

    form = IntegrationForm

    class Media:
        css = {"all": ("integrations/admin.css",)}

    list_display = (
        "name",
        "integration_id",
        "type",
        "provider",
        "shown_target",
        "shown_credentials",
        "subscribed_events",
        "active",
        "updated_at",
    )
    list_filter = ("type", "provider", "active")
    search_fields = ("name", "integration_id")  # not the URL: searching it would let a viewer guess a secret
    readonly_fields = ("created_at", "updated_at")
    actions = ["send_test_notification"]

    def save_model(self, request, obj, form, change):
        """A change writes the credentials only when the form changed them, applied to what is stored
        then (a worker may have rotated a token since the page was opened)."""
        if change:
            registry.store_changes(obj, getattr(form, "credential_change", None))
            self.audit_save(request, obj, form, change)
        else:
            super().save_model(request, obj, form, change)

    @admin.display(description="Target")
    def shown_target(self, integration: Integration) -> str:
        if integration.provider == "smtp":
            return ", ".join(integration.recipients)
        return outbound.redact_url(integration.endpoint_url) if integration.endpoint_url else "—"

    @admin.display(description="Credentials")
    def shown_credentials(self, integration: Integration) -> str:
        keys = integration.auth_config_keys or []
        return ", ".join(f"{key}: {credentials.MASK}" for key in keys) if keys else "—"

    @admin.display(description="Events")
    def subscribed_events(self, integration: Integration) -> str:
        provider = providers.PROVIDERS.get(integration.provider)
        if provider is not None and not provider.takes_events(integration):
            return "none (takes no events)"  # a payment provider, an inbox with nobody to write to
        return ", ".join(integration.events) if integration.events else "all events"

    @admin.action(description="Send a test notification")
    def send_test_notification(self, request, queryset):
        sent = [services.send_test_notification(integration) for integration in queryset.order_by("pk")]
        self.message_user(
            request,
            f"Queued a test notification for {len(sent)} integration(s); see Outbound messages for the result.",
            messages.SUCCESS,
        )


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "finished_at", "ok", "http_status", "error", "excerpt", "request_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "what",
        "integration",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "created_at",
        "last_error_excerpt",
    )
    list_filter = ("status", "message_type", "event", "integration")
    list_select_related = ("integration",)
    search_fields = ("dedup_key", "event", "method", "integration__name", "integration__integration_id")
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["retry_failed"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The detail page is read-only (obj given); the list keeps change rights for the retry action.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="Event or method", ordering="event")
    def what(self, message: OutboundMessage) -> str:
        return message.event or message.method

    @admin.display(description="Last error")
    def last_error_excerpt(self, message: OutboundMessage) -> str:
        return message.last_error[:120]

    @admin.action(description="Retry selected failed or dead messages", permissions=["change"])
    def retry_failed(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        retried = services.retry_failed_messages(ids)
        skipped = len(ids) - retried
        note = f" Skipped {skipped} that had not failed or died." if skipped else ""
        level = messages.SUCCESS if retried else messages.WARNING
        self.message_user(request, f"Queued {retried} failed message(s) for another round of attempts.{note}", level)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("integration")
