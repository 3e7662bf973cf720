"""People (User with a role) and systems (APIKey with scopes)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


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


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER, db_index=True)

    def has_role(self, minimum: str) -> bool:
        return self.is_active and Role.rank(self.role) >= Role.rank(minimum)


class Scope(models.TextChoices):
    """What an API key may do. Systems get the narrowest set that works."""

    ALERTS_WRITE = "alerts:write", "Post alerts"
    INCIDENTS_READ = "incidents:read", "Read incidents"
    INCIDENTS_WRITE = "incidents:write", "Acknowledge, resolve and escalate incidents"
    POLICIES_WRITE = "policies:write", "Manage contacts, escalation policies and drills"
    RECORDINGS_READ = "recordings:read", "Read recordings"
    RECORDINGS_WRITE = "recordings:write", "Upload recordings and chat logs"
    INTEGRATIONS_WRITE = "integrations:write", "Manage integrations and send messages"


class APIKey(models.Model):
    """A key for a system. Only a SHA-256 digest of the key is stored; the key is shown once.

    Keys are 256-bit random secrets, so a fast digest is safe (no dictionary to attack) and keeps
    authentication cheap during an alert storm. `prefix` finds the row without scanning.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
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
