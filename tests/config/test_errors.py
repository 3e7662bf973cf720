"""Every error a caller can meet is JSON in one shape, never an HTML page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_route_is_a_json_404(api_client):
    response = api_client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
    assert "/api/v1/no-such-thing" in response.json()["error"]["message"]


def test_unknown_route_outside_the_api_is_also_json(api_client):
    response = api_client.get("/wp-login.php")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(api_client):
    response = api_client.delete("/healthz")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "DELETE" in response.json()["error"]["message"]


def test_request_id_is_echoed_for_log_correlation(api_client):
    response = api_client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"


def test_a_made_up_request_id_with_odd_characters_is_replaced(api_client):
    response = api_client.get("/healthz", HTTP_X_REQUEST_ID="<script>")

    assert response["X-Request-ID"] != "<script>"
    assert len(response["X-Request-ID"]) == 32


def test_openapi_schema_and_docs_are_served(api_client):
    schema = api_client.get("/api/schema/")
    docs = api_client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"openapi" in schema.content
    assert docs.status_code == 200


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn exits non-zero for an undocumented view, a missing serializer or an unknown authenticator
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "ApiKey" in (tmp_path / "schema.yaml").read_text()
