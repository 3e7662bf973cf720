"""The carriers' circuit breakers: config.breaker under the names "carrier:<name>" (one mechanism
for carriers and integrations). After BREAKER_FAILURE_THRESHOLD failures within
BREAKER_WINDOW_SECONDS a carrier is skipped for BREAKER_COOLDOWN_SECONDS; one success closes it."""

from __future__ import annotations

from config import breaker


def name(carrier: str) -> str:
    return f"carrier:{carrier}"


def _keys(carrier: str) -> tuple[str, str]:
    return breaker.keys(name(carrier))


def is_open(carrier: str) -> bool:
    return breaker.is_open(name(carrier))


def open_until(carrier: str) -> float | None:
    return breaker.open_until(name(carrier))


def record_failure(carrier: str) -> bool:
    """Counts a failure; returns True when this one opened the carrier's breaker."""
    return breaker.record_failure(name(carrier))


def record_success(carrier: str) -> None:
    breaker.record_success(name(carrier))
