"""Permissions every view can name. The DRF default is DenyByDefault: a view that names none is closed."""

from __future__ import annotations

from rest_framework.permissions import BasePermission


class DenyByDefault(BasePermission):
    message = "This endpoint has no permission configured, so it refuses every request."

    def has_permission(self, request, view) -> bool:
        return False


class Public(BasePermission):
    """Explicitly open: health checks and carrier webhooks (which verify their own signatures)."""

    def has_permission(self, request, view) -> bool:
        return True
