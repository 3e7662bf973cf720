"""Every route names its permission, and the role matrix holds, role by role."""

from __future__ import annotations

import pytest
from django.test import Client
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
    if getattr(callback, "page_permission", None):
        return None  # a server-rendered page: console.access.person_page / public_page
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


# --- the admin site, walked role by role --------------------------------------------------------


def admin_urls(objects: dict) -> list[str]:
    """Every GET-able admin route made concrete: ids become a row of that route's model (`objects`
    maps a model to a pk), the app index is walked for each app. Sign-out is left out (it would end
    the walk's session) and so is the catch-all that answers unknown admin URLs."""
    urls = set()
    for path, callback in routes():
        if not path.startswith("admin/") or path in ("admin/logout/",) or "(?P<url>" in path:
            continue
        if "(?P<app_label>" in path:
            labels = path.split("(?P<app_label>", 1)[1].split(")", 1)[0].split("|")
            urls.update(f"/admin/{label}/" for label in labels)
            continue
        model_admin = getattr(callback, "model_admin", None)
        pk = objects.get(model_admin.model, 999999) if model_admin else objects.get("content-type", 1)
        concrete = path.replace("<int:content_type_id>", str(objects.get("content-type", 1)))
        while "<" in concrete:
            start = concrete.index("<")
            concrete = concrete[:start] + str(pk) + concrete[concrete.index(">", start) + 1 :]
        urls.add("/" + concrete)
    return sorted(urls)


@pytest.fixture
def admin_world(db, settings, make_api_key):
    """Rows for every admin page, a super admin holding live tokens and an MFA secret, and one person
    of each role to sign into the admin as."""
    from django.contrib.contenttypes.models import ContentType

    from accounts.models import APIKey, AuditEvent, LoginSession, User
    from incidents.models import Contact, EscalationPolicy, Incident
    from tests.accounts.helpers import enrol_mfa, login, signed_in

    settings.MFA_REQUIRED_ROLES = []
    people = {role: person(f"walker-{role.lower()}", role) for role in ROLES}
    root = person("root-holder", Role.SUPER_ADMIN)
    secret, recovery = enrol_mfa(signed_in("root-holder"))
    from tests.accounts.helpers import totp_code

    tokens = login(APIClient(), "root-holder", mfa_token=totp_code(secret, steps_ahead=1)).json()
    refreshed = APIClient().post("/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json")
    assert refreshed.status_code == 200
    raw_key = make_api_key("alerts:write", name="walk-key")
    factories.policy(factories.contact("Kim"))
    open_incident(summary="walked")
    objects = {
        User: root.pk,
        APIKey: APIKey.objects.first().pk,
        AuditEvent: AuditEvent.objects.first().pk,
        LoginSession: LoginSession.objects.first().pk,
        Contact: Contact.objects.first().pk,
        EscalationPolicy: EscalationPolicy.objects.first().pk,
        Incident: Incident.objects.first().pk,
        "content-type": ContentType.objects.get_for_model(User).pk,
    }
    secrets_held = [
        tokens["access_token"],
        tokens["refresh_token"],
        refreshed.json()["access_token"],
        refreshed.json()["refresh_token"],
        raw_key,
        secret,
        *recovery,
    ]
    # a JWT's signature alone is enough to spot a copied token
    secrets_held += [token.rsplit(".", 1)[1] for token in secrets_held if token.count(".") == 2]
    return people, objects, secrets_held


def walk(client, urls: list[str]) -> dict[str, object]:
    client.raise_request_exception = False  # a crash is an answer to report (500), not a test error
    return {url: client.get(url) for url in urls}


def test_every_model_in_the_admin_is_one_of_ours_and_named_in_the_allow_list():
    from django.contrib import admin

    from accounts.rights import ADMIN_SITE_RIGHTS

    registered = {model._meta.label_lower for model in admin.site._registry}

    assert registered - set(ADMIN_SITE_RIGHTS[Role.SUPER_ADMIN]) == set()


@pytest.mark.django_db
def test_an_anonymous_caller_is_sent_to_the_admin_sign_in_from_every_admin_page(admin_world):
    _, objects, _ = admin_world

    answers = walk(Client(), admin_urls(objects))

    wrong = {
        url: response.status_code
        for url, response in answers.items()
        if url != "/admin/login/" and not (response.status_code == 302 and "/admin/login/" in response["Location"])
    }
    assert wrong == {}
    assert answers["/admin/login/"].status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.SUPERVISOR])
def test_people_below_admin_cannot_enter_any_admin_page(admin_world, role):
    people, objects, _ = admin_world
    client = Client()
    client.force_login(people[role])

    answers = walk(client, admin_urls(objects))

    wrong = {
        url: response.status_code
        for url, response in answers.items()
        if url != "/admin/login/" and not (response.status_code == 302 and "/admin/login/" in response["Location"])
    }
    assert wrong == {}


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPER_ADMIN])
def test_admins_see_only_the_allow_listed_models_never_a_token_and_never_a_server_error(admin_world, role):
    from accounts.rights import ADMIN_SITE_RIGHTS

    # given: a super admin holds live JWTs, an MFA secret and recovery codes, and an API key exists
    people, objects, secrets_held = admin_world
    client = Client()
    client.force_login(people[role])

    # when: the admin walks every admin page
    answers = walk(client, admin_urls(objects))

    # then: no server error anywhere
    assert {url: r.status_code for url, r in answers.items() if r.status_code >= 500} == {}
    # the index lists exactly the models of the role's allow-list
    listed = {
        f"{app['app_label']}.{entry['object_name'].lower()}"
        for app in answers["/admin/"].context["app_list"]
        for entry in app["models"]
    }
    allowed = {model for model, actions in ADMIN_SITE_RIGHTS[role].items() if actions & {"view", "change"}}
    assert listed and listed <= allowed
    # no third-party table is reachable (token blacklist, lockout rows, beat schedule, groups)
    for url in ("/admin/token_blacklist/outstandingtoken/", "/admin/axes/accessattempt/", "/admin/auth/group/"):
        assert client.get(url).status_code == 404, url
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 404
    # and no page shows a token, a key, an MFA secret or a recovery code
    leaks = {
        url: [held[:12] for held in secrets_held if held in response.content.decode(errors="replace")]
        for url, response in answers.items()
    }
    assert {url: found for url, found in leaks.items() if found} == {}


@pytest.mark.django_db
def test_an_admin_cannot_delete_people_or_open_a_super_admin_but_a_super_admin_can(admin_world):
    people, _, _ = admin_world
    admin_client, super_client = Client(), Client()
    admin_client.force_login(people[Role.ADMIN])
    super_client.force_login(people[Role.SUPER_ADMIN])
    viewer, root = people[Role.VIEWER], people[Role.SUPER_ADMIN]

    assert admin_client.get(f"/admin/accounts/user/{viewer.pk}/delete/").status_code == 403
    assert admin_client.get(f"/admin/accounts/user/{root.pk}/change/").status_code in (302, 403)
    assert super_client.get(f"/admin/accounts/user/{viewer.pk}/delete/").status_code == 200
    assert super_client.get(f"/admin/accounts/user/{root.pk}/change/").status_code == 200
