"""Outbound notifications by integration and what became of each delivery: delivered, retrying, failed."""

from __future__ import annotations

from prometheus_client import Counter

from config.metrics import after_commit

OUTBOUND = Counter(
    "aicc_outbound_messages",
    "Outbound messages settled or rescheduled, by integration (its id), provider (as kind) and status",
    ["integration", "kind", "status"],
    registry=None,
)


def message_settled(message, status: str) -> None:
    """status: delivered, failed (a permanent error), dead (every try failed) or retrying."""
    integration = message.integration
    labels = (integration.integration_id[:100], str(integration.provider), status)
    after_commit(lambda: OUTBOUND.labels(*labels).inc())
