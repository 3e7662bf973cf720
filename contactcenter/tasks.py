"""Beat's Amazon Connect poll (scheduled only when CONNECT_INSTANCE_ID is set)."""

from __future__ import annotations

from celery import shared_task

from contactcenter import services


@shared_task(name="contactcenter.poll_connect", ignore_result=True, soft_time_limit=60, time_limit=90)
def poll_connect() -> None:
    services.poll_connect()
