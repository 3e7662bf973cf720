"""Admins configure integrations and watch what was sent; history is read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy

from accounts.admin import AuditedAdmin
from accounts.models import AuditAction
from config import outbound
from integrations import services
from integrations.models import KNOWN_EVENTS, DeliveryAttempt, Integration, IntegrationKind, OutboundMessage

URL_KINDS = (IntegrationKind.WEBHOOK, IntegrationKind.SLACK)


class EventChoiceField(forms.MultipleChoiceField):
    """Ticked event names; an empty value (no box ticked) is every event."""

    def to_python(self, value):
        return [name for name in super().to_python(value) if name]


class IntegrationForm(forms.ModelForm):
    """The signing secret and a webhook or Slack URL are write-only: a Slack URL's path is its
    credential, and a page's HTML travels to browsers, caches and screenshots. Leaving them blank
    keeps what is stored; the page shows only scheme://host/… of the stored URL."""

    clear_secret = forms.BooleanField(required=False, label="Remove the signing secret")
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
        fields = ["name", "kind", "target", "secret", "clear_secret", "events", "active", "max_attempts"]
        widgets = {"secret": forms.PasswordInput(render_value=False)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance if self.instance.pk else None
        # the known events, and any other name an integration already subscribes to (kept, not dropped)
        extra = [name for name in (stored.events if stored else []) or [] if name not in KNOWN_EVENTS]
        self.fields["events"].choices = [(name, name) for name in (*KNOWN_EVENTS, *extra)]
        self.initial["secret"] = ""
        self.fields["secret"].help_text = "Webhooks only: signs each body (X-Oncall-Signature: sha256=<HMAC>). " + (
            "A secret is set; leave blank to keep it." if stored and stored.secret else "None is set."
        )
        if stored is not None and stored.kind in URL_KINDS:
            self.initial["target"] = ""
            self.fields["target"].required = False
            self.fields[
                "target"
            ].help_text = (
                f"Stored: {outbound.redact_url(stored.target)} (hidden). Leave blank to keep it, or enter a new URL."
            )

    def clean(self):
        cleaned = super().clean()
        stored = Integration.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        if stored is not None:
            if not cleaned.get("target") and stored.kind in URL_KINDS and cleaned.get("kind") == stored.kind:
                cleaned["target"] = stored.target  # a new kind needs a new target: blank is refused then
            if cleaned.get("clear_secret"):
                cleaned["secret"] = ""
            elif not cleaned.get("secret"):
                cleaned["secret"] = stored.secret
        return cleaned


@admin.register(Integration)
class IntegrationAdmin(AuditedAdmin):
    audit_action = AuditAction.INTEGRATION_CHANGED

    form = IntegrationForm
    list_display = ("name", "kind", "shown_target", "subscribed_events", "active", "max_attempts", "updated_at")
    list_filter = ("kind", "active")
    search_fields = ("name",)  # not the target: searching it would let a viewer guess a secret URL
    readonly_fields = ("created_at", "updated_at")
    actions = ["send_test_notification"]

    @admin.display(description="Target", ordering="target")
    def shown_target(self, integration: Integration) -> str:
        return outbound.redact_url(integration.target) if integration.kind in URL_KINDS else integration.target

    @admin.display(description="Events")
    def subscribed_events(self, integration: Integration) -> str:
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
    fields = ("number", "started_at", "finished_at", "ok", "http_status", "error")
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
        "event",
        "integration",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "created_at",
        "last_error_excerpt",
    )
    list_filter = ("status", "event", "integration")
    list_select_related = ("integration",)
    search_fields = ("dedup_key", "event", "integration__name")
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

    @admin.display(description="Last error")
    def last_error_excerpt(self, message: OutboundMessage) -> str:
        return message.last_error[:120]

    @admin.action(description="Retry selected failed messages", permissions=["change"])
    def retry_failed(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        retried = services.retry_failed_messages(ids)
        skipped = len(ids) - retried
        note = f" Skipped {skipped} that had not failed." if skipped else ""
        level = messages.SUCCESS if retried else messages.WARNING
        self.message_user(request, f"Queued {retried} failed message(s) for another round of attempts.{note}", level)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("integration")
