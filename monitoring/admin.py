"""Alert rules in the admin: the rule, and read-only the state of each series it watches."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from accounts.admin import AuditedAdmin
from accounts.models import AuditAction
from monitoring import services
from monitoring.models import AlertRule, RuleSeries


class RuleSeriesInline(admin.TabularInline):
    model = RuleSeries
    fields = ("series_key", "state", "since", "cleared_at", "value", "evaluated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(AuditedAdmin):
    audit_action = AuditAction.POLICY_CHANGED
    list_display = ("rule_name", "metric", "operator", "threshold", "for_seconds", "level", "enabled", "evaluated_at")
    list_filter = ("level", "enabled", "metric")
    search_fields = ("rule_name", "metric")
    fields = ("rule_name", "metric", "operator", "threshold", "for_seconds", "labels", "level", "policy", "enabled")
    fields += ("firing_since", "evaluated_at", "last_error")
    readonly_fields = ("firing_since", "evaluated_at", "last_error")
    inlines = [RuleSeriesInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.enabled:
            services.clear_rule(obj, timezone.now(), why="the rule was disabled")

    def delete_model(self, request, obj):
        services.delete_rule(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            services.delete_rule(rule, actor=request.user)
