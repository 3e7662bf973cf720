"""People (User with a role) and systems (APIKey with scopes)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    VIEWER = "VIEWER", "Viewer"
    AGENT = "AGENT", "Agent"
    SUPERVISOR = "SUPERVISOR", "Supervisor"
    ADMIN = "ADMIN", "Admin"
    SUPER_ADMIN = "SUPER_ADMIN", "Super admin"

    @classmethod
    def rank(cls, role: str) -> int:
        """Roles are ordered: each one can do everything the ones below it can."""
        return list(cls.values).index(role)


STAFF_ROLES = (Role.ADMIN, Role.SUPER_ADMIN)


class User(AbstractUser):
    """The role decides everything: admin access (ADMIN and above), API rights, MFA requirement."""

    role = models.CharField(
        max_length=20, choices=Role.choices, default=Role.VIEWER, db_index=True, verbose_name=_("role")
    )

    def save(self, *args, **kwargs):
        if self.is_superuser and self.role != Role.SUPER_ADMIN:
            self.role = Role.SUPER_ADMIN  # `createsuperuser` makes a super admin
        self.is_superuser = self.role == Role.SUPER_ADMIN
        self.is_staff = self.role in STAFF_ROLES
        super().save(*args, **kwargs)

    def has_role(self, minimum: str) -> bool:
        return self.is_active and Role.rank(self.role) >= Role.rank(minimum)

    def has_perm(self, perm: str, obj=None) -> bool:
        """Admin-site rights follow the role's allow-list (accounts.rights); only a super admin
        touches a super admin."""
        from accounts.rights import may

        if not self.is_active or not may(self.role, perm):
            return False
        return not (isinstance(obj, User) and obj.role == Role.SUPER_ADMIN and self.role != Role.SUPER_ADMIN)

    def has_module_perms(self, app_label: str) -> bool:
        from accounts.rights import may_enter_app

        return self.is_active and may_enter_app(self.role, app_label)


class Scope(models.TextChoices):
    """What an API key may do. Systems get the narrowest set that works."""

    ALERTS_WRITE = "alerts:write", "Post alerts"
    INCIDENTS_READ = "incidents:read", "Read incidents"
    INCIDENTS_WRITE = "incidents:write", "Acknowledge, resolve and escalate incidents"
    POLICIES_WRITE = "policies:write", "Manage contacts, escalation policies and drills"
    RECORDINGS_READ = "recordings:read", "Read recordings"
    RECORDINGS_WRITE = "recordings:write", "Upload recordings and chat logs"
    INTEGRATIONS_WRITE = "integrations:write", "Manage integrations and send messages"
    PAYMENTS_REFUND = "payments:refund", "Cancel and refund payments (with integrations:write)"


class APIKey(models.Model):
    """A key for a system. Only a SHA-256 digest of the key is stored; the key is shown once.

    Keys are 256-bit random secrets, so a fast digest is safe (no dictionary to attack) and keeps
    authentication cheap during an alert storm. `prefix` finds the row without scanning.
    """

    name = models.CharField(max_length=100, verbose_name=_("name"))
    prefix = models.CharField(max_length=16, unique=True, editable=False, verbose_name=_("prefix"))
    hashed_key = models.CharField(max_length=64, editable=False, verbose_name=_("hashed key"))
    scopes = models.JSONField(default=list, verbose_name=_("scopes"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("last used at"))

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class LoginSession(models.Model):
    """One sign-in on one device. Its id rides in the JWTs as `sid`; ending it stops both tokens."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_sessions", verbose_name=_("user")
    )
    refresh_jti = models.CharField(
        max_length=64, db_index=True, help_text=_("the current refresh token"), verbose_name=_("refresh jti")
    )
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("ip"))
    user_agent = models.CharField(max_length=300, blank=True, verbose_name=_("user agent"))
    mfa_verified = models.BooleanField(default=False, verbose_name=_("mfa verified"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_refreshed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last refreshed at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))

    class Meta:
        verbose_name = _("login session")
        verbose_name_plural = _("login sessions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} from {self.ip or '?'} ({'ended' if self.ended_at else 'active'})"


class MFADevice(models.Model):
    """A TOTP authenticator. The secret is encrypted at rest (Fernet, key from MFA_ENCRYPTION_KEY)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_device", verbose_name=_("user")
    )
    encrypted_secret = models.TextField(verbose_name=_("encrypted secret"))
    confirmed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("confirmed at"))
    last_used_step = models.BigIntegerField(
        default=0, help_text=_("a TOTP step is accepted once"), verbose_name=_("last used step")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("MFA device")
        verbose_name_plural = _("MFA devices")

    def __str__(self) -> str:
        return f"TOTP for {self.user} ({'confirmed' if self.confirmed_at else 'pending'})"


class RecoveryCode(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes", verbose_name=_("user")
    )
    code_hash = models.CharField(max_length=64, verbose_name=_("code hash"))
    used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("used at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")

    def __str__(self) -> str:
        return f"recovery code of {self.user} ({'used' if self.used_at else 'unused'})"


class AuditAction(models.TextChoices):
    LOGIN_SUCCEEDED = "login_succeeded", "Login succeeded"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOGIN_LOCKED_OUT = "login_locked_out", "Login refused: locked out"
    LOGOUT = "logout", "Logout"
    SESSION_ENDED = "session_ended", "Session ended"
    MFA_ENROLLED = "mfa_enrolled", "MFA enrolled"
    MFA_DISABLED = "mfa_disabled", "MFA disabled"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated", "Recovery codes regenerated"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    USER_CREATED = "user_created", "User created"
    ROLE_CHANGED = "role_changed", "Role changed"
    USER_UPDATED = "user_updated", "User updated"
    LOCKOUT_CLEARED = "lockout_cleared", "Lockout cleared"
    API_KEY_CREATED = "api_key_created", "API key created"
    API_KEY_REVOKED = "api_key_revoked", "API key revoked"
    INCIDENT_ACKNOWLEDGED = "incident_acknowledged", "Incident acknowledged"
    INCIDENT_RESOLVED = "incident_resolved", "Incident resolved"
    INCIDENT_ESCALATED = "incident_escalated", "Incident escalated"
    CONTACT_CHANGED = "contact_changed", "Contact created or changed"
    POLICY_CHANGED = "policy_changed", "Escalation policy created or changed"
    INTEGRATION_CHANGED = "integration_changed", "Integration created or changed"
    DRILL_STARTED = "drill_started", "Drill started"
    RECORDING_DOWNLOADED = "recording_downloaded", "Recording downloaded"
    RECORDING_CHANGED = "recording_changed", "Recording legal hold or retention changed"
    PAYMENT_REFUND_REQUESTED = "payment_refund_requested", "Payment cancel or refund requested"
    PAYMENT_REFUND_ATTEMPTED = "payment_refund_attempted", "Payment cancel or refund sent to the provider"


class AuditEvent(models.Model):
    """Who did what, from where. Append-only; never holds a password, token, key or TOTP code."""

    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("at"))
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True, verbose_name=_("action"))
    actor = models.CharField(
        max_length=200, help_text=_("user:name, api-key:name, contact:name or system"), verbose_name=_("actor")
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor user"),
    )
    target = models.CharField(max_length=200, blank=True, verbose_name=_("target"))
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("ip"))
    user_agent = models.CharField(max_length=300, blank=True, verbose_name=_("user agent"))
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
