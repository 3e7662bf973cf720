"""An anonymous caller walks every route: it is refused with 401/403, never answered with a 5xx.

The OpenAPI schema names every API route and its methods; the URL resolver adds the routes the schema
leaves out (health checks, carrier webhooks). The admin site has its own walk, per role, in
tests/accounts/test_permissions.py.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}

# Open on purpose: they answer anyone, but a 5xx is still a bug (readyz may say 503: "not ready").
PUBLIC_ROUTES = {
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/schema/",
    "/api/docs/",
    "/healthz",
    "/health",  # the seed's monitoring path, the same liveness answer
    "/readyz",
}


def schema_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    return [(method, path) for path, operations in paths.items() for method in operations if method in HTTP_METHODS]


def resolver_paths(patterns=None, prefix: str = "/"):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from resolver_paths(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def concrete(path: str) -> str:
    """/incidents/{incident_id} and /incidents/<int:incident_id> become /incidents/1."""
    return re.sub(r"\{[^}]+\}|<[^>]+>", "1", path)


def anonymous_client() -> APIClient:
    client = APIClient()
    client.raise_request_exception = False  # a crash is an answer to count (500), not a test error
    return client


def test_the_walk_covers_the_routes_that_failed_before():
    walked = {path for _, path in schema_operations()}

    assert {"/webhook/start", "/webhook/ack/{incident_id}", "/api/v1/contacts", "/api/v1/auth/register"} <= walked


def test_an_anonymous_caller_is_refused_by_every_api_route_with_every_method():
    # given: nobody signed in and no API key
    client = anonymous_client()
    outcomes = {}
    # when: every operation of the schema is called
    for method, path in schema_operations():
        response = getattr(client, method)(concrete(path), {}, format="json")
        outcomes[f"{method.upper()} {path}"] = response.status_code

    # then: protected routes refuse (401/403), public ones answer without a server error
    wrong = {
        operation: code
        for operation, code in outcomes.items()
        if (code >= 500 if operation.split(" ", 1)[1] in PUBLIC_ROUTES else code not in (401, 403))
        and (operation, code) != ("GET /readyz", 503)  # "not ready" is readyz's answer, not a crash
    }
    assert wrong == {}


def test_no_route_answers_an_anonymous_caller_with_a_server_error_whatever_the_method():
    # given: every route of the URL resolver, including those the schema leaves out (health checks,
    # carrier webhooks), but not the admin
    client = anonymous_client()
    paths = {concrete(path) for path in resolver_paths() if not path.startswith("/admin/")}
    assert {"/webhooks/twilio/voice/1", "/healthz", "/webhook/start"} <= paths

    # when: each is called with every method, declared or not
    outcomes = {
        f"{method.upper()} {path}": getattr(client, method)(path, {}, format="json").status_code
        for path in paths
        for method in sorted(HTTP_METHODS)
    }

    # then: no 5xx (readyz may report 503 "not ready", which is its answer, not a crash)
    assert {op: code for op, code in outcomes.items() if code >= 500 and op != "GET /readyz"} == {}
