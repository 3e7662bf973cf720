"""Admin for the engine's records, and for incidents.

The Incident admin is here rather than in incidents/admin.py because it shows the calls placed
(CallAttempt) and its actions escalate through the engine: the record (incidents) never imports the
engine (orchestrator). The model stays incidents.Incident, so its admin URL and the role allow-list
(accounts/rights.py, keyed by app_label.model) are unchanged."""

from django.contrib import admin, messages

from accounts.admin import ReadOnlyAdmin
from accounts.audit import actor_name
from config.errors import DomainError
from incidents import services
from incidents.models import Alert, Incident, IncidentEvent
from orchestrator.models import CallAttempt
from orchestrator.services import escalate_now


@admin.register(CallAttempt)
class CallAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "incident",
        "step",
        "contact",
        "to_number",
        "provider",
        "status",
        "answered_by",
        "digits",
        "created_at",
    )
    list_filter = ("status", "provider", "answered_by")
    search_fields = ("to_number", "provider_call_id", "contact__name", "incident__summary")
    readonly_fields = [field.name for field in CallAttempt._meta.fields if field.name != "token"]
    exclude = ("token",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class CallAttemptInline(ReadOnlyInline):
    model = CallAttempt
    fields = (
        "step",
        "contact",
        "to_number",
        "provider",
        "status",
        "answered_by",
        "digits",
        "error",
        "dialed_at",
        "ended_at",
    )
    readonly_fields = fields
    ordering = ("step",)


class IncidentEventInline(ReadOnlyInline):
    model = IncidentEvent
    fields = ("at", "kind", "actor", "message", "call")
    readonly_fields = fields
    ordering = ("at", "pk")
    verbose_name_plural = "timeline"

    @admin.display(description="call")
    def call(self, event: IncidentEvent) -> str:
        """The timeline row's call, by its step ("call 2"); the record keeps only the attempt's id."""
        if event.attempt_id is None:
            return "-"
        step = CallAttempt.objects.filter(pk=event.attempt_id).values_list("step", flat=True).first()
        return f"call {step}" if step is not None else f"attempt {event.attempt_id} (gone)"


class AlertInline(ReadOnlyInline):
    model = Alert
    fields = ("received_at", "source", "status", "received_by", "payload")
    readonly_fields = fields


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "summary",
        "severity",
        "state",
        "is_drill",
        "current_step",
        "source",
        "created_at",
    )
    list_filter = ("is_drill", "state", "severity", "source", "policy")
    search_fields = ("summary", "dedup_key", "acknowledged_by")
    date_hierarchy = "created_at"
    readonly_fields = (
        "summary",
        "tts_text",
        "severity",
        "policy",
        "is_drill",
        "state",
        "exhausted_reason",
        "current_step",
        "next_action_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "created_at",
        "updated_at",
        "source",
        "dedup_key",
    )
    inlines = [CallAttemptInline, IncidentEventInline, AlertInline]
    actions = ["acknowledge_selected", "resolve_selected", "escalate_selected"]

    # Read-only (ReadOnlyAdmin): the engine owns a live incident's row, and a full-row save from a
    # form opened a minute ago would revert what the engine wrote since (state, step, deadline).
    # Incidents open through the ingestion service (the API, or an alert), and change only through
    # the actions below, which call the services (and so the audit log).

    def _run(self, request, queryset, action, done: str) -> None:
        actor = actor_name(request.user)
        count = 0
        for incident in queryset:
            try:
                action(incident.pk, actor=actor)
                count += 1
            except DomainError as exc:
                self.message_user(request, f"#{incident.pk}: {exc.message}", level=messages.WARNING)
        self.message_user(request, f"{done} {count} incident(s).")

    @admin.action(description="Acknowledge (stop calling)")
    def acknowledge_selected(self, request, queryset):
        self._run(request, queryset, services.acknowledge, "Acknowledged")

    @admin.action(description="Resolve")
    def resolve_selected(self, request, queryset):
        self._run(request, queryset, services.resolve, "Resolved")

    @admin.action(description="Escalate now (call the next contact)")
    def escalate_selected(self, request, queryset):
        self._run(request, queryset, escalate_now, "Escalated")
