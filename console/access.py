"""Who may open a status page. Every page view carries a `page_permission` marker naming its rule,
so the route walk (tests/accounts/test_permissions.py) knows no page was left open by mistake.

Deny by default: a page is for a signed-in person (a Django session; API keys have none), and an
action needs a role. A person whose role requires MFA and who never enrolled is signed out: they
must enrol first (POST /api/v1/auth/mfa/enrol), as on the API and in the admin.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts import mfa
from accounts.models import Role

ENROL_ENDPOINT = "POST /api/v1/auth/mfa/enrol"


def public_page(view):
    """Open to anyone, on purpose (the sign-in form)."""
    view.page_permission = "public"
    return view


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
    return HttpResponseRedirect(reverse("console:login") + (f"?{query}" if query else ""))


def enrol_message() -> str:
    return _("Your role requires MFA: enrol an authenticator first (%(endpoint)s, then confirm), then sign in.") % {
        "endpoint": ENROL_ENDPOINT
    }


def person_page(minimum_role: str = Role.VIEWER):
    """A page for a signed-in person with at least `minimum_role`: anonymous → the sign-in page,
    too low a role → 403."""

    def decorate(view):
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return login_redirect(request)
            if mfa.is_required(user) and not mfa.is_enabled(user):
                logout(request)
                messages.error(request, enrol_message())
                return HttpResponseRedirect(reverse("console:login"))
            if not user.has_role(minimum_role):
                return forbidden(request, minimum_role)
            return view(request, *args, **kwargs)

        guarded.page_permission = f"signed-in person, {minimum_role} or above"
        return guarded

    return decorate


def forbidden(request: HttpRequest, minimum_role: str) -> HttpResponse:
    text = _("This needs the %(role)s role or higher; you are %(yours)s.") % {
        "role": minimum_role,
        "yours": request.user.role,
    }
    return render(request, "console/forbidden.html", {"text": text}, status=403)
