"""Which carriers to try for a call, in order: the contact's preference, the primary, the failover."""

from __future__ import annotations

from django.conf import settings

KNOWN_CARRIERS = ("twilio", "vonage")


def carriers_for(preferred: str = "") -> list[str]:
    order = [settings.VOICE_PROVIDER]
    if settings.VOICE_FAILOVER_PROVIDER and settings.VOICE_FAILOVER_PROVIDER not in order:
        order.append(settings.VOICE_FAILOVER_PROVIDER)
    if preferred in order:
        order.remove(preferred)
        order.insert(0, preferred)
    return order
