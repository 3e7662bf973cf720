"""Every route names its permission, and the role matrix holds, role by role."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import Role
from config.permissions import DenyByDefault
from incidents.services import open_incident
from tests import factories
from tests.accounts.helpers import person


def routes(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def missing_permission(callback) -> str | None:
    """Why this view has no explicit permission, or None when it has one."""
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None and issubclass(view_class, APIView):
        declared = any("permission_classes" in klass.__dict__ for klass in view_class.__mro__ if klass is not APIView)
        if not declared:
            return "no permission_classes of its own (DRF's default applies)"
        if not view_class.permission_classes or view_class.permission_classes == [DenyByDefault]:
            return "permission_classes is empty or only the deny-by-default class"
        return None
    if getattr(callback, "carrier_webhook", None):
        return None  # verified by the carrier's signature
    module = getattr(callback, "__module__", "")
    if module.startswith("django.contrib.admin") or getattr(callback, "admin_site", None):
        return None  # the admin site checks staff access (ADMIN and above)
    return f"a plain view ({module}.{getattr(callback, '__name__', callback)}) with no declared permission"


def test_every_route_declares_an_explicit_permission():
    # everything under admin/ is admin.site.urls, each view wrapped by admin_view (staff: ADMIN and above)
    offenders = {
        path: reason
        for path, callback in routes()
        if not path.startswith("admin/") and (reason := missing_permission(callback))
    }

    assert offenders == {}


def test_the_route_walk_catches_a_view_that_forgot_its_permission():
    class Forgotten(APIView):
        def get(self, request):
            return None

    def plain_view(request):
        return None

    assert missing_permission(Forgotten.as_view()) is not None
    assert missing_permission(plain_view) is not None


ROLES = [Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SUPER_ADMIN]

# (method, path, body, the least role allowed)
MATRIX = [
    ("get", "/api/v1/incidents", None, Role.VIEWER),
    ("get", "/api/v1/incidents/{incident}", None, Role.VIEWER),
    ("get", "/api/v1/contacts", None, Role.VIEWER),
    ("post", "/api/v1/incidents/{incident}/acknowledge", None, Role.AGENT),
    ("post", "/api/v1/incidents/{incident}/resolve", None, Role.AGENT),
    ("post", "/api/v1/incidents/{incident}/escalate", None, Role.AGENT),
    ("post", "/api/v1/contacts", {"name": "x", "phone": "+821099998888"}, Role.SUPERVISOR),
    ("post", "/api/v1/alerts/generic", {"summary": "manual page"}, Role.SUPERVISOR),
    ("get", "/api/v1/users", None, Role.ADMIN),
    ("post", "/api/v1/auth/register", {"username": "newbie", "password": "x"}, Role.ADMIN),
    ("get", "/api/v1/api-keys", None, Role.ADMIN),
    ("get", "/api/v1/audit-events", None, Role.ADMIN),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_role_matrix(role, settings):
    settings.MFA_REQUIRED_ROLES = []
    factories.policy(factories.contact("Kim"))
    incident = open_incident(summary="matrix").incident
    client = APIClient()
    client.raise_request_exception = False  # a crash is a wrong answer to report, not a test error
    client.force_authenticate(person(f"user-{role.lower()}", role))

    outcomes = {}
    for method, path, body, least in MATRIX:
        response = getattr(client, method)(path.format(incident=incident.pk), body, format="json")
        code = response.status_code
        allowed = Role.rank(role) >= Role.rank(least)
        # allowed: any answer but a refusal or a server error (a 400 for a weak password is fine); refused: 403
        right = (code < 500 and code not in (401, 403)) if allowed else code == 403
        outcomes[f"{method.upper()} {path}"] = right or code

    assert all(result is True for result in outcomes.values()), outcomes


@pytest.mark.django_db
def test_an_agent_cannot_create_users(settings):
    client = APIClient()
    client.force_authenticate(person("agent", Role.AGENT))

    response = client.post("/api/v1/auth/register", {"username": "x1x", "password": "long-enough-pw-1"}, format="json")

    assert response.status_code == 403
    assert "ADMIN" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_viewer_cannot_acknowledge():
    factories.policy(factories.contact("Kim"))
    incident = open_incident(summary="viewer tries").incident
    client = APIClient()
    client.force_authenticate(person("viewer", Role.VIEWER))

    response = client.post(f"/api/v1/incidents/{incident.pk}/acknowledge")

    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.state == "triggered"


@pytest.mark.django_db
def test_an_admin_cannot_make_a_super_admin_but_a_super_admin_can():
    admin_client, super_client = APIClient(), APIClient()
    admin_client.force_authenticate(person("admin1", Role.ADMIN))
    super_client.force_authenticate(person("root1", Role.SUPER_ADMIN))
    body = {"username": "wannabe", "password": "long-enough-pw-1", "role": "SUPER_ADMIN"}

    assert admin_client.post("/api/v1/auth/register", body, format="json").status_code == 403
    assert super_client.post("/api/v1/auth/register", body, format="json").status_code == 201


@pytest.mark.django_db
def test_open_signup_creates_viewers_only(settings, api_client):
    settings.OPEN_SIGNUP = True

    response = api_client.post(
        "/api/v1/auth/register", {"username": "walkin", "password": "long-enough-pw-1", "role": "ADMIN"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["role"] == "VIEWER"


@pytest.mark.django_db
def test_api_keys_cannot_manage_accounts(make_api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read', 'incidents:write')}")

    response = client.get("/api/v1/users")

    assert response.status_code == 403
    assert "API keys cannot" in response.json()["error"]["message"]
