"""Liveness (`/healthz`, the seed's path) and readiness (`/readyz`: database, broker, a live worker, beat).

`/readyz` is public (load balancers call it), so it names the check that failed and nothing more;
the exception, which may quote a connection URL, is logged.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config.heartbeats import heartbeat_checks
from config.permissions import Public
from config.redis import redis_client

logger = logging.getLogger(__name__)
# What a caller learns about a failed check: which one, never why (that is in the log).
UNAVAILABLE = "unavailable"


class HealthzApi(APIView):
    permission_classes = [Public]
    authentication_classes = []

    @extend_schema(summary="Liveness: the web process answers", tags=["health"], responses=OpenApiTypes.OBJECT)
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

    @extend_schema(
        summary="Readiness: database, broker, a live worker and a ticking beat (503 names the failed one)",
        tags=["health"],
        responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        checks: dict[str, str] = {}
        try:
            checks["database"] = _check_database()
        except Exception:  # any failure means "not ready"; the details go to the log, not the caller
            logger.warning("readiness check failed: database", exc_info=True)
            checks["database"] = UNAVAILABLE
        ages: dict[str, float | None] = {"worker_last_heartbeat_seconds_ago": None, "beat_last_tick_seconds_ago": None}
        try:
            client = redis_client(settings.CELERY_BROKER_URL, timeout=1.0)
            client.ping()
            checks["broker"] = "ok"
            heartbeats, ages = heartbeat_checks()  # a worker that died or a stopped beat is "not ready" too
            checks.update(heartbeats)
        except Exception:  # an exception text can carry a host, a user name or a password in a URL
            logger.warning("readiness check failed: broker", exc_info=True)
            checks["broker"] = UNAVAILABLE
        failed = [name for name, result in checks.items() if result != "ok"]
        body = {
            "status": "ok" if not failed else "unavailable",
            "checks": checks,
            **ages,
        }
        if failed:
            body["failed"] = failed
            body["message"] = "; ".join(f"{name} unavailable" for name in failed)
        return Response(body, status=503 if failed else 200)
