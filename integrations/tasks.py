"""Thin tasks: take an id, call the service. Retries are scheduled by the service, not by Celery."""

from __future__ import annotations

import logging

from celery import shared_task

from integrations import services, social
from integrations.models import OutboundMessage

logger = logging.getLogger(__name__)


@shared_task(name="integrations.deliver_message", acks_late=True, ignore_result=True)
def deliver_message(message_id: int) -> None:
    """Acked late: a worker that dies mid-send leaves the task to another (the claim makes it safe)."""
    try:
        services.deliver(message_id)
    except OutboundMessage.DoesNotExist:
        logger.warning("outbound message no longer exists", extra={"message_id": message_id})


@shared_task(name="integrations.retry_due_messages", ignore_result=True)
def retry_due_messages() -> int:
    return services.retry_due_messages()


@shared_task(name="integrations.close_idle_social_chats", acks_late=True, ignore_result=True)
def close_idle_social_chats() -> int:
    """Closes social conversations quiet for SOCIAL_CHAT_IDLE_SECONDS; recordings stores their logs.
    Acked late: a run cut short is simply done again (closing is idempotent)."""
    return social.close_idle_conversations()
