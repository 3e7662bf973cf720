"""The "Drill this policy" and "Test call to this contact" admin actions. They start drills, which
are the engine's, so they are added here to the policy and contact admins of incidents/admin.py
(the record never imports the engine). Both ring real phones: each policy or contact gets at most
ADMIN_DRILLS_PER_WINDOW drills per ADMIN_DRILL_WINDOW_SECONDS, counted in Redis (the cache)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import admin, messages
from django.core.cache import cache
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from incidents.admin import ContactAdmin, EscalationPolicyAdmin
from incidents.models import Contact, EscalationPolicy
from orchestrator.drills import start_drill, start_test_call

logger = logging.getLogger(__name__)


def drill_allowed(target: str) -> bool:
    """Counts one drill for `target` in a fixed window; False once the window's quota is used.
    An unreachable cache lets the drill through (a rate limit must not break the admin)."""
    limit = getattr(settings, "ADMIN_DRILLS_PER_WINDOW", 3)
    window = getattr(settings, "ADMIN_DRILL_WINDOW_SECONDS", 600)
    key = f"throttle:admin-drill:{target}"  # throttle:* like the API's rate limits
    try:
        cache.add(key, 0, timeout=window)
        return cache.incr(key) <= limit
    except Exception:
        logger.warning("drill rate limit skipped for %s: the cache is unreachable", target, exc_info=True)
        return True


def _refused(request, admin_view, what: str) -> None:
    limit = getattr(settings, "ADMIN_DRILLS_PER_WINDOW", 3)
    minutes = round(getattr(settings, "ADMIN_DRILL_WINDOW_SECONDS", 600) / 60)
    admin_view.message_user(
        request,
        _("%(what)s: not started, %(limit)d drills in %(minutes)d minutes is the limit (they ring real phones)")
        % {"what": what, "limit": limit, "minutes": minutes},
        level=messages.ERROR,
    )


def _started(request, admin_view, what: str, incident) -> None:
    link = reverse("admin:incidents_incident_change", args=[incident.pk])
    admin_view.message_user(
        request,
        format_html(_('{}: drill <a href="{}">#{}</a> started, marked DRILL'), what, link, incident.pk),
        level=messages.SUCCESS,
    )


class DrillablePolicyAdmin(EscalationPolicyAdmin):
    actions = ["drill_selected"]

    @admin.action(description=gettext_lazy("Drill this policy (rings its people)"), permissions=["change"])
    def drill_selected(self, request, queryset):
        for policy in queryset.order_by("name"):
            if not drill_allowed(f"policy:{policy.pk}"):
                _refused(request, self, policy.name)
                continue
            _started(request, self, policy.name, start_drill(policy, actor=request.user))


class TestCallContactAdmin(ContactAdmin):
    actions = ["test_call_selected"]

    @admin.action(description=gettext_lazy("Test call to this contact (one call, a drill)"), permissions=["change"])
    def test_call_selected(self, request, queryset):
        for contact in queryset.order_by("name"):
            if not drill_allowed(f"contact:{contact.pk}"):
                _refused(request, self, contact.name)
                continue
            _started(request, self, contact.name, start_test_call(contact, actor=request.user))


for model, model_admin in ((EscalationPolicy, DrillablePolicyAdmin), (Contact, TestCallContactAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
