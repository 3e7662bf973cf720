from django.contrib import admin

from orchestrator.models import CallAttempt


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
