"""The seed's aicc_active_sessions_total: sign-in sessions not ended whose refresh token is still valid."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from config.metrics import bounded_reads, gauge


class ActiveSessionsCollector:
    source = "sessions"

    def collect(self):
        from accounts.models import LoginSession

        cutoff = timezone.now() - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
        recent = Q(last_refreshed_at__gte=cutoff) | Q(last_refreshed_at__isnull=True, created_at__gte=cutoff)
        with bounded_reads():
            active = LoginSession.objects.filter(recent, ended_at__isnull=True).count()
        yield gauge("aicc_active_sessions_total", "Signed-in sessions (not ended, refresh token still valid)", active)


SCRAPE_COLLECTORS = (ActiveSessionsCollector(),)
