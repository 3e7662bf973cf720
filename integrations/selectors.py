"""Reads for integrations: who hears an event, and what became of a notification."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from config.errors import NotFound
from integrations.models import Integration, OutboundMessage


def subscribed_integrations(event: str) -> list[Integration]:
    """Active integrations that take `event` (an empty `events` list takes every event), among those
    whose provider takes events at all (Provider.takes_events: not a payment provider, not a social
    inbox with nobody to write to).

    Filtered in Python: the table is small, and JSON containment is not portable to SQLite.
    """
    from integrations import providers

    return [
        integration
        for integration in Integration.objects.filter(active=True)
        if integration.subscribes_to(event)
        and integration.provider in providers.PROVIDERS
        and providers.get(integration.provider).takes_events(integration)
    ]


def messages_for(*, dedup_key: str, event: str | None = None) -> QuerySet[OutboundMessage]:
    """The messages one notification produced, one per integration, by integration name."""
    messages = OutboundMessage.objects.filter(dedup_key=dedup_key).select_related("integration")
    if event is not None:
        messages = messages.filter(event=event)
    return messages.order_by("integration__name")


def message_with_attempts(message_id: int) -> OutboundMessage:
    return (
        OutboundMessage.objects.select_related("integration").prefetch_related("delivery_attempts").get(pk=message_id)
    )


def status_counts(*, dedup_key: str) -> dict[str, int]:
    """e.g. {"delivered": 2, "pending": 1}: what a timeline shows for one notification."""
    rows = OutboundMessage.objects.filter(dedup_key=dedup_key).values("status").annotate(count=Count("pk"))
    return {row["status"]: row["count"] for row in rows}


def integration_list() -> QuerySet[Integration]:
    return Integration.objects.order_by("integration_id")


def integration_get(integration_id: str) -> Integration:
    integration = Integration.objects.filter(integration_id=integration_id).first()
    if integration is None:
        raise NotFound(f"No integration {integration_id!r}.")
    return integration


def active_integration_or_none(integration_id: str) -> Integration | None:
    """The webhook route's lookup: an unknown or inactive integration is simply None (a 403 there)."""
    if not isinstance(integration_id, str) or len(integration_id) > 100:
        return None
    return Integration.objects.filter(integration_id=integration_id, active=True).first()


def message_list(integration: Integration, *, status: str | None = None) -> QuerySet[OutboundMessage]:
    messages = OutboundMessage.objects.filter(integration=integration).select_related("integration")
    if status:
        messages = messages.filter(status=status)
    return messages.order_by("-pk")


def message_get(integration: Integration, message_id: int) -> OutboundMessage:
    message = (
        OutboundMessage.objects.filter(integration=integration, pk=message_id)
        .select_related("integration")
        .prefetch_related("delivery_attempts")
        .first()
    )
    if message is None:
        raise NotFound(f"No message {message_id} for integration {integration.integration_id!r}.")
    return message
