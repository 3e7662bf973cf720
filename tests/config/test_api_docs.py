"""The API docs work offline and read as a table of contents: Swagger UI's files come from our own
static files (drf-spectacular-sidecar), never a CDN, and every operation has a tag and a summary."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def static_prefix() -> str:
    return "/" + settings.STATIC_URL.lstrip("/")


def referenced_urls(html: str) -> list[str]:
    """Every URL the page loads or links: src/href attributes and URLs inside its inline script."""
    attributes = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    quoted = re.findall(r"""["']((?:https?:)?//[^"']+|/static/[^"']+)["']""", html)
    return attributes + quoted


def test_the_docs_page_loads_nothing_from_another_host(api_client):
    # when: a browser with no internet opens the docs
    response = api_client.get("/api/docs/")

    # then: every asset it names is one of our static files
    assert response.status_code == 200
    html = response.content.decode()
    urls = referenced_urls(html)
    assert urls, html
    assert [url for url in urls if re.match(r"(https?:)?//", url)] == []
    assert not re.search(r"cdn|jsdelivr|unpkg|cdnjs", html, flags=re.IGNORECASE)
    assets = [url for url in urls if url.startswith(static_prefix())]
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets), urls


def test_the_static_files_the_docs_page_names_exist(api_client):
    html = api_client.get("/api/docs/").content.decode()
    assets = {url.split("?")[0] for url in referenced_urls(html) if url.startswith(static_prefix())}

    missing = [url for url in assets if finders.find(url.removeprefix(static_prefix())) is None]

    assert assets
    assert missing == []


def test_every_operation_has_a_known_tag_and_a_summary():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    known = {tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]}

    untidy = {
        f"{method.upper()} {path}": (operation.get("tags"), operation.get("summary"))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
        and not (len(operation.get("tags", [])) == 1 and operation["tags"][0] in known and operation.get("summary"))
    }

    assert untidy == {}
    used = {operation["tags"][0] for operations in schema["paths"].values() for operation in operations.values()}
    assert used == known  # no tag declared for nothing


def test_the_escalation_policy_operations_are_grouped_under_policies():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert schema["paths"]["/api/v1/escalation-policies"]["get"]["tags"] == ["policies"]
    assert schema["paths"]["/api/v1/escalation-policies/{policy_id}/drill"]["post"]["tags"] == ["drills"]
