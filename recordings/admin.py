"""Recordings in the admin: metadata only, read-only. The media is heard through the audited
download API (GET /api/v1/recordings/{id}/download), never from the admin's own pages."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from recordings.models import Recording


@admin.register(Recording)
class RecordingAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "status", "session_id", "agent_id", "customer_id", "started_at", "duration_seconds")
    list_filter = ("kind", "status", "legal_hold", "quality")
    search_fields = ("session_id", "agent_id", "customer_id")
    date_hierarchy = "started_at"
    exclude = ("wrapped_key",)
