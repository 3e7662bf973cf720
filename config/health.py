"""Liveness (`/healthz`, the seed's path) and readiness (`/readyz`: database and broker)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config.permissions import Public
from config.redis import redis_client
from config.tasks import BEAT_HEARTBEAT_KEY


class HealthzApi(APIView):
    permission_classes = [Public]
    authentication_classes = []

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


class ReadyzApi(APIView):
    permission_classes = [Public]
    authentication_classes = []

    @extend_schema(exclude=True)
    def get(self, request):
        checks: dict[str, str] = {}
        try:
            checks["database"] = _check_database()
        except Exception as exc:  # any failure means "not ready"; say which and why
            checks["database"] = f"error: {exc.__class__.__name__}: {exc}"
        beat_age = None
        try:
            client = redis_client(settings.CELERY_BROKER_URL, timeout=1.0)
            client.ping()
            checks["broker"] = "ok"
            last_tick = client.get(BEAT_HEARTBEAT_KEY)
            beat_age = round(time.time() - float(last_tick), 1) if last_tick else None
        except Exception as exc:
            checks["broker"] = f"error: {exc.__class__.__name__}: {exc}"
        failed = [name for name, result in checks.items() if result != "ok"]
        body = {
            "status": "ok" if not failed else "unavailable",
            "checks": checks,
            "beat_last_tick_seconds_ago": beat_age,
        }
        if failed:
            body["failed"] = failed
        return Response(body, status=503 if failed else 200)
