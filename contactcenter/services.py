"""Polling Amazon Connect: one snapshot of its real-time metrics, kept in Redis for the scrape.

The snapshot lives under one key with a TTL of a few poll intervals: when polling stops (beat down,
Connect unreachable), the aicc_connect_* series disappear from /metrics instead of repeating old
numbers; aicc_connect_snapshot_age_seconds says how fresh they are. Nothing here raises: a failed
poll is logged and counted in aicc_connect_poll_errors_total{reason} (the error code Connect answered,
e.g. ThrottlingException, or timeout / unreachable / no_credentials / bad_response).
"""

from __future__ import annotations

import json
import logging
import re
import time

from django.conf import settings

from contactcenter import connect
from contactcenter.metrics import POLL_ERRORS

logger = logging.getLogger(__name__)

SNAPSHOT_KEY = "contactcenter:connect:snapshot"
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")


def snapshot_ttl_seconds() -> int:
    return max(60, int(settings.CONNECT_POLL_SECONDS * 3))


def failure_reason(error: Exception) -> str:
    """A short, bounded label for the error counter."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        ConnectTimeoutError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        return code if _ERROR_CODE.fullmatch(code) else "client_error"
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return "timeout"
    if isinstance(error, ConnectionError):
        return "unreachable"
    if isinstance(error, NoCredentialsError):
        return "no_credentials"
    return "bad_response"


def _count_failure(step: str, error: Exception) -> None:
    reason = failure_reason(error)
    POLL_ERRORS.labels(reason).inc()
    logger.warning("amazon connect poll failed", extra={"step": step, "reason": reason, "error": str(error)[:300]})


def poll_connect() -> connect.Snapshot | None:
    """Reads the queues' current metrics and the agents' status; stores what was read. The queue metrics
    are required; the agents' status is optional (it needs its own IAM right) and its failure is
    counted on its own."""
    instance_id = settings.CONNECT_INSTANCE_ID
    if not instance_id:
        return None
    try:
        client = connect.connect_client()
        queue_names = connect.queues(client, instance_id)
        queue_ids = list(queue_names)
        snapshot = connect.Snapshot(
            taken_at=time.time(),
            queue_names=queue_names,
            queue_metrics=connect.current_metrics(client, instance_id, queue_ids),
        )
    except Exception as error:  # boto3 raises many kinds; a poll never fails the beat task loudly
        _count_failure("current_metrics", error)
        return None
    try:
        snapshot.agents_by_status = connect.agents_by_status(client, instance_id, queue_ids)
    except Exception as error:
        _count_failure("user_data", error)
    store(snapshot)
    logger.debug("amazon connect polled", extra={"queues": len(queue_ids)})
    return snapshot


def store(snapshot: connect.Snapshot) -> None:
    from config.redis import redis_client

    redis_client().set(SNAPSHOT_KEY, json.dumps(snapshot.as_json()), ex=snapshot_ttl_seconds())


def latest_snapshot(timeout: float) -> dict | None:
    """The last stored snapshot (a selector for the scrape), or None when there is none or it expired."""
    from config.redis import redis_client

    stored = redis_client(timeout=timeout).get(SNAPSHOT_KEY)
    return json.loads(stored) if stored else None
