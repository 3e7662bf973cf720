"""The audit log's one writer. The IP and user agent come from the request being served, if any."""

from __future__ import annotations

from typing import Any

from accounts.models import AuditEvent
from config.logging import client_var

FORBIDDEN_KEYS = ("password", "token", "secret", "key", "code", "otp")


def actor_name(principal: Any) -> str:
    if principal is None:
        return "system"
    if isinstance(principal, str):
        return principal
    if hasattr(principal, "api_key"):
        return principal.username
    if getattr(principal, "is_authenticated", False) and hasattr(principal, "get_username"):
        return f"user:{principal.get_username()}"
    return "anonymous"


def record(action: str, *, actor: Any = None, target: str = "", data: dict | None = None) -> AuditEvent:
    """Writes one audit row. `data` must never carry secrets: keys that look like one are refused."""
    data = data or {}
    leaked = [name for name in data if any(word in name.lower() for word in FORBIDDEN_KEYS)]
    if leaked:
        raise ValueError(f"audit data must not carry secrets: {leaked}")
    ip, user_agent = client_var.get()
    actor_user = actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None
    return AuditEvent.objects.create(
        action=action,
        actor=actor_name(actor)[:200],
        actor_user=actor_user,
        target=str(target)[:200],
        ip=ip,
        user_agent=user_agent,
        data=data,
    )
