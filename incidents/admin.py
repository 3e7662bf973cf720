from django.contrib import admin, messages

from accounts.admin import AuditedAdmin
from accounts.audit import actor_name
from accounts.models import AuditAction
from config.errors import DomainError
from incidents import services
from incidents.models import Alert, Contact, EscalationPolicy, Incident, IncidentEvent, PolicyContact
from orchestrator.models import CallAttempt
from orchestrator.services import escalate_now


@admin.register(Contact)
class ContactAdmin(AuditedAdmin):
    audit_action = AuditAction.CONTACT_CHANGED
    list_display = ("name", "phone", "language", "preferred_provider", "active", "user")
    list_filter = ("active", "language", "preferred_provider")
    search_fields = ("name", "phone", "user__username")


class PolicyContactInline(admin.TabularInline):
    model = PolicyContact
    extra = 1
    ordering = ("position",)
    autocomplete_fields = ("contact",)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedAdmin):
    audit_action = AuditAction.POLICY_CHANGED
    list_display = ("name", "is_default", "max_attempts", "ring_timeout_seconds", "pause_seconds", "message_repeats")
    list_filter = ("is_default",)
    search_fields = ("name",)
    inlines = [PolicyContactInline]


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
    fields = ("at", "kind", "actor", "message", "attempt")
    readonly_fields = fields
    ordering = ("at", "pk")
    verbose_name_plural = "timeline"


class AlertInline(ReadOnlyInline):
    model = Alert
    fields = ("received_at", "source", "status", "received_by", "payload")
    readonly_fields = fields


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
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

    # The engine owns a live incident's row: a full-row save from a form opened a minute ago would
    # revert what the engine wrote since (state, step, deadline). Incidents open through the
    # ingestion service (the API, or an alert), and change only through the actions below, which
    # call the services (and so the audit log). The page is read-only.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

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
