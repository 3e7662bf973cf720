"""Which round of the spoken message a carrier's request is on: both carriers' webhooks carry it
as `?round=N` in the URLs we give them, and read it the same way."""

from __future__ import annotations

from django.http import HttpRequest


def message_round(request: HttpRequest) -> int:
    """The round named in the URL, 1 when it is absent or not a number (a carrier never sends that,
    so whoever did gets the message from the start)."""
    raw = request.GET.get("round", "1")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 4 else 1
