from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import audit, mfa
from accounts.models import APIKey, AuditAction, AuditEvent, LoginSession, Role, Scope, User
from accounts.services import (
    check_access_change,
    check_may_delete,
    clear_lockout,
    create_api_key,
    revoke_api_key,
    validate_expiry,
)
from accounts.sessions import count_mfa_failure
from config.errors import DomainError


class MFAAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin sign-in asks for the TOTP code of accounts that use MFA, and refuses accounts whose
    role requires MFA until they enrol it (through the API). A wrong code counts as a failed sign-in
    for the lockout, as on the API. templates/admin/login.html renders the code field."""

    otp_token = forms.CharField(
        label=gettext_lazy("MFA code"),
        required=False,
        max_length=32,
        help_text=gettext_lazy(
            "The 6-digit code of your authenticator app, or a recovery code. Empty if you do not use MFA."
        ),
    )

    def get_invalid_login_error(self):
        if getattr(self.request, "axes_locked_out", False):
            return ValidationError(
                _("Too many failed sign-ins: this account is locked for a while."), code="locked_out"
            )
        return super().get_invalid_login_error()

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if mfa.is_enabled(user):
            if mfa.verify(user, self.cleaned_data.get("otp_token", "")) is None:
                count_mfa_failure(self.request, user.get_username(), via="admin")
                raise ValidationError(_("The MFA code is wrong, expired or already used."), code="mfa_invalid")
        elif mfa.is_required(user):
            raise ValidationError(
                _("Your role requires MFA: enrol at POST /api/v1/auth/mfa/enrol before using the admin."),
                code="mfa_required",
            )
        audit.record(
            AuditAction.LOGIN_SUCCEEDED, actor=user, target=f"user:{user.get_username()}", data={"via": "admin"}
        )


admin.site.login_form = MFAAdminAuthenticationForm
admin.site.site_header = gettext_lazy("On-call escalation")
admin.site.site_title = gettext_lazy("On-call admin")
admin.site.index_title = gettext_lazy("Incidents, people and policies")
# "View site" leads to the status page for responders: console's AppConfig.ready() sets it, the one place.
# No model sidebar beside every page: the incident list needs the width (and a phone needs it more).
admin.site.enable_nav_sidebar = False


def _unregister_third_party_admins() -> None:
    """Third-party admins nobody needs here, some dangerous: the beat schedule lives in code
    (config/celery.py) and is not edited in the admin, roles replace groups. (django-axes' tables are
    off through AXES_ENABLE_ADMIN; simplejwt's token tables are not installed.)"""
    from django.contrib.auth.models import Group
    from django_celery_beat import models as beat

    for model in (
        Group,
        beat.PeriodicTask,
        beat.IntervalSchedule,
        beat.CrontabSchedule,
        beat.SolarSchedule,
        beat.ClockedSchedule,
    ):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_unregister_third_party_admins()


class AuditedAdmin(admin.ModelAdmin):
    """Every change made in the admin lands in the audit log, with the fields that changed."""

    audit_action: str = AuditAction.USER_UPDATED

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.audit_save(request, obj, form, change)

    def audit_save(self, request, obj, form, change) -> None:
        audit.record(
            self.audit_action,
            actor=request.user,
            target=f"{obj._meta.model_name}:{obj}",
            data={"created": not change, "fields": sorted(form.changed_data)},
        )

    def delete_model(self, request, obj):
        audit.record(
            self.audit_action, actor=request.user, target=f"{obj._meta.model_name}:{obj}", data={"deleted": True}
        )
        super().delete_model(request, obj)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("role", "is_active")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "password1", "password2", "role")}),)
    readonly_fields = ("last_login", "date_joined")
    actions = ["unlock_selected"]

    def _touches_super_admin(self, request, obj) -> bool:
        return obj is not None and obj.role == Role.SUPER_ADMIN and request.user.role != Role.SUPER_ADMIN

    def has_view_permission(self, request, obj=None) -> bool:
        return not self._touches_super_admin(request, obj) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not self._touches_super_admin(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self._touches_super_admin(request, obj) and super().has_delete_permission(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        """The change form refuses what would lock everyone out (see services.check_access_change):
        lowering your own role, disabling yourself, demoting or disabling the last administrator."""
        form_class = super().get_form(request, obj, **kwargs)
        actor = request.user

        class GuardedUserForm(form_class):
            def clean(self):
                cleaned = super().clean()
                if self.instance.pk is not None:
                    current = User.objects.get(pk=self.instance.pk)
                    try:
                        check_access_change(
                            current, actor=actor, role=cleaned.get("role"), is_active=cleaned.get("is_active")
                        )
                    except DomainError as exc:
                        raise ValidationError(exc.message, code=exc.code) from exc
                return cleaned

        return GuardedUserForm

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the guarded delete page
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        """Nobody deletes themselves or the last active administrator."""
        target = self.get_object(request, object_id)
        if target is not None and request.method == "POST":
            try:
                with transaction.atomic():
                    check_may_delete(target, actor=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return HttpResponseRedirect(request.path)
        return super().delete_view(request, object_id, extra_context)

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and request.user.role != Role.SUPER_ADMIN:
            kwargs["choices"] = [choice for choice in Role.choices if choice[0] != Role.SUPER_ADMIN]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        previous = User.objects.filter(pk=obj.pk).values_list("role", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        if not change:
            audit.record(
                AuditAction.USER_CREATED, actor=request.user, target=f"user:{obj.username}", data={"role": obj.role}
            )
        elif previous != obj.role:
            audit.record(
                AuditAction.ROLE_CHANGED,
                actor=request.user,
                target=f"user:{obj.username}",
                data={"from": previous, "to": obj.role},
            )

    @admin.action(description="Unlock sign-in (clear failed attempts)")
    def unlock_selected(self, request, queryset):
        for user in queryset:
            clear_lockout(user.username, actor=request.user)
        self.message_user(request, f"Unlocked {queryset.count()} account(s).")


class APIKeyAddForm(forms.ModelForm):
    """A new key: its name, scopes ticked from the list, an optional expiry. The key itself is made by
    accounts.services.create_api_key and shown once, on the page after saving."""

    scope_choices = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("What the key may do: give a system the narrowest set that works."),
    )

    class Meta:
        model = APIKey
        fields = ["name", "expires_at"]
        help_texts = {"expires_at": gettext_lazy("Optional; empty for a key that does not expire.")}

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["expires_at"] = validate_expiry(cleaned.get("expires_at"))
        except DomainError as exc:
            self.add_error("expires_at", exc.message)
        return cleaned


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created here (or with `manage.py create_api_key`, or the API): the key is shown once,
    right after saving, and only its digest is stored. Existing keys are listed, inspected and revoked."""

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
    exclude = ("hashed_key",)
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scope_choices", "expires_at")
        return super().get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = APIKeyAddForm
            kwargs["fields"] = ["name", "expires_at"]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created, raw_key = create_api_key(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=request.user,
        )
        for field in APIKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        self.message_user(
            request,
            format_html(
                '{} <code class="oc-new-key">{}</code><br>{}',
                _("The new key for %(name)s:") % {"name": created.name},
                raw_key,
                _("Copy it now: it is shown only this once and cannot be recovered (only its digest is stored)."),
            ),
            level=messages.WARNING,
        )

    def response_add(self, request, obj, post_url_continue=None):
        """Straight to the key's page, where the message above shows the key once."""
        return HttpResponseRedirect(reverse("admin:accounts_apikey_change", args=[obj.pk]))

    @admin.action(description=gettext_lazy("Revoke selected API keys"))
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key, actor=request.user)
        self.message_user(request, _("Revoked %(count)d key(s).") % {"count": queryset.count()})


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "actor", "target", "ip")
    list_filter = ("action", "at")
    search_fields = ("actor", "target", "ip")
    date_hierarchy = "at"


@admin.register(LoginSession)
class LoginSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "created_at", "last_refreshed_at", "ip", "mfa_verified", "ended_at")
    list_filter = ("ended_at", "mfa_verified")
    search_fields = ("user__username", "ip")
    exclude = ("refresh_jti",)
