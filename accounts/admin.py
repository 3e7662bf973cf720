from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import APIKey, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_active", "is_staff", "last_login")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Role", {"fields": ("role",)}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("Role", {"fields": ("role",)}))


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created with `manage.py create_api_key` (the key is shown once); here they are
    listed, inspected and revoked."""

    list_display = ("name", "prefix", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "prefix")
    readonly_fields = (
        "name",
        "prefix",
        "scopes",
        "created_at",
        "created_by",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    actions = ["revoke_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        from accounts.services import revoke_api_key

        for api_key in queryset:
            revoke_api_key(api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
