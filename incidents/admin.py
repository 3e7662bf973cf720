"""Admin for what people configure: contacts and escalation policies. The Incident admin lives in
orchestrator/admin.py, because it shows the calls and can escalate, which are the engine's."""

from django.contrib import admin

from accounts.admin import AuditedAdmin
from accounts.models import AuditAction
from incidents.models import Contact, EscalationPolicy, PolicyContact


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
