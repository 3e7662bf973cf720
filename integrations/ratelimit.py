"""A token bucket per integration (config.ratelimit), shared by every worker and web process.

The bucket holds up to `rate` tokens (one second's worth) and refills at `rate` per second; each send
takes one. `take()` answers how long to wait when the bucket is empty, so a worker reschedules the
message instead of sleeping. If Redis cannot be reached the send goes ahead: the limit protects the
provider, and is never a reason to lose a message.
"""

from __future__ import annotations

from django.conf import settings

from config import ratelimit


def rate_for(integration) -> float:
    return float(integration.rate_limit_per_second or getattr(settings, "INTEGRATION_RATE_LIMIT_PER_SECOND", 10.0))


def take(integration) -> float:
    """Takes a token: 0.0 when the send may go now, else the seconds until a token is there."""
    rate = rate_for(integration)
    return ratelimit.take(f"oncall:integration-rate:{integration.integration_id}", rate=rate, capacity=max(1.0, rate))
