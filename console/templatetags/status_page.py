"""Template filters for the status pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from orchestrator import words

register = template.Library()


@register.filter
def ago(moment: datetime | None) -> str:
    """'just now', '3 minutes ago', '1 hour, 5 minutes ago' (in the active language)."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return _("just now")
    return _("%(ago)s ago") % {"ago": timesince(moment, depth=2)}


@register.simple_tag
def state_badge(state: str) -> SafeString:
    """The same badge, words and colour as the admin's (orchestrator/words.py, oncall/states.css)."""
    return words.state_badge(state)


@register.simple_tag
def drill_badge() -> SafeString:
    return words.drill_badge()
