"""Recordings in the admin: metadata read-only, a player, and the compliance actions.

The player's audio comes from `<id>/play/`, which answers through the same audited path as the
download API (recordings.downloads): every listen is an audit event. Legal hold goes on and off
only through the actions, which call the compliance service (and so the audit log); the row's other
fields belong to the workers that process it and are never edited by hand.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.admin import ReadOnlyAdmin
from config.errors import DomainError
from recordings import compliance, downloads
from recordings.models import Kind, Recording, Status


@admin.register(Recording)
class RecordingAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "session_id",
        "agent_id",
        "customer_id",
        "started_at",
        "duration_seconds",
        "legal_hold",
    )
    list_filter = ("kind", "status", "legal_hold", "quality", "carrier")
    search_fields = ("session_id", "agent_id", "customer_id")
    date_hierarchy = "started_at"
    actions = ["place_legal_hold", "lift_legal_hold"]

    readonly_fields = ("listen",)
    # What an officer reads first (what, who, when, kept until), then the audio's facts; where and
    # under which key it is stored, and the carrier's ids, folded away.
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "listen",
                    ("kind", "status"),
                    ("session_id", "agent_id", "customer_id", "channel"),
                    ("started_at", "stopped_at", "stored_at"),
                    "duration_seconds",
                    ("legal_hold", "retention_days", "retention_until"),
                    "failure_reason",
                    ("purged_at", "purge_reason"),
                )
            },
        ),
        (
            gettext_lazy("Audio"),
            {
                "fields": (
                    ("quality", "format", "codec"),
                    ("source_format", "source_codec", "source_size_bytes"),
                    ("sample_rate", "channels", "size_bytes"),
                )
            },
        ),
        (
            gettext_lazy("Call"),
            {
                "classes": ("collapse",),
                "fields": (
                    ("incident_id", "call_attempt_id"),
                    ("carrier", "carrier_call_id", "carrier_recording_id"),
                    "carrier_media_url",
                ),
            },
        ),
        (
            gettext_lazy("Storage and keys"),
            {
                "classes": ("collapse",),
                "fields": (
                    ("storage_backend", "storage_key", "stored_size_bytes"),
                    ("key_id", "sha256"),
                    ("work_queued_at", "work_tries"),
                ),
            },
        ),
    )

    @admin.display(description=gettext_lazy("Listen"))
    def listen(self, recording: Recording):
        if recording.status != Status.STORED:
            return _("Nothing to play: the recording is %(status)s.") % {"status": recording.get_status_display()}
        url = reverse("admin:recordings_recording_play", args=[recording.pk])
        if recording.kind == Kind.CHAT:
            return format_html('<a href="{}">{}</a>', url, _("Open the chat log (gzip JSON)"))
        return format_html(
            '<audio controls preload="none" src="{}" data-recording="{}"></audio><div class="help">{}</div>',
            url,
            recording.pk,
            _("Every play is written to the audit log."),
        )

    # --- the player's source ----------------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "<int:recording_id>/play/",
                self.admin_site.admin_view(self.play_view),
                name="recordings_recording_play",
            )
        ]
        return own + super().get_urls()

    def play_view(self, request, recording_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            return downloads.audited_response(request.user, recording_id, request.headers.get("Range"), inline=True)
        except DomainError as exc:
            return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")

    # --- compliance -------------------------------------------------------------------------------

    def _hold(self, request, queryset, *, hold: bool) -> None:
        if not request.user.has_perm("recordings.change_recording"):
            raise PermissionDenied
        for recording_id in queryset.values_list("pk", flat=True):
            try:
                compliance.set_legal_hold(recording_id, hold=hold, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"#{recording_id}: {exc.message}", level=messages.WARNING)
                continue
            text = _("#%(id)d is on legal hold") if hold else _("#%(id)d is no longer on legal hold")
            self.message_user(request, text % {"id": recording_id}, level=messages.SUCCESS)

    @admin.action(description=gettext_lazy("Place on legal hold (never purged)"))
    def place_legal_hold(self, request, queryset):
        self._hold(request, queryset, hold=True)

    @admin.action(description=gettext_lazy("Lift the legal hold"))
    def lift_legal_hold(self, request, queryset):
        self._hold(request, queryset, hold=False)
