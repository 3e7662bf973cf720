"""Every error a caller can meet is JSON in one shape, never an HTML page."""

from __future__ import annotations

import json

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


# --- bad query parameters, bad hosts, garbage tokens: a 4xx in our JSON shape, never a 500 ----------

BAD_PAGING = [
    ("offset", str(2**63)),
    ("offset", "9" * 40),
    ("offset", "-1"),
    ("offset", "ten"),
    ("limit", "-5"),
    ("limit", "0"),
    ("limit", "lots"),
    ("limit", str(2**64)),
]


@pytest.fixture
def admin_client():
    from rest_framework.test import APIClient

    from tests.accounts.helpers import person

    client = APIClient()
    client.raise_request_exception = False  # a crash is the answer under test
    client.force_authenticate(person("paging-admin", "ADMIN"))
    return client


@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/audit-events"])
@pytest.mark.parametrize(("field", "value"), BAD_PAGING)
def test_paging_out_of_range_or_not_a_number_is_a_400_naming_the_field(admin_client, settings, path, field, value):
    settings.MFA_REQUIRED_ROLES = []

    response = admin_client.get(path, {field: value})

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert field in response.json()["error"]["message"]


def test_the_largest_offset_allowed_is_an_empty_page_not_a_crash(admin_client, settings):
    from config.pagination import MAX_OFFSET

    settings.MFA_REQUIRED_ROLES = []

    response = admin_client.get("/api/v1/incidents", {"offset": MAX_OFFSET, "limit": 200})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_request_for_a_host_we_do_not_serve_is_a_json_400(api_client):
    response = api_client.get("/healthz", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "bad_request"


def test_too_many_form_fields_is_a_json_400(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    settings.TWILIO_AUTH_TOKEN = "a-token"

    response = client.post("/webhooks/twilio/status/abc", {f"f{n}": "x" for n in range(50)})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("handler", ["handler400", "handler403", "handler404", "handler500"])
def test_every_django_error_handler_answers_json(rf, handler):
    from django.core.exceptions import PermissionDenied
    from django.http import Http404
    from django.utils.module_loading import import_string

    import config.urls

    view = import_string(getattr(config.urls, handler))
    status = int(handler[-3:])
    args = () if status == 500 else ({400: ValueError("x"), 403: PermissionDenied(), 404: Http404()}[status],)

    response = view(rf.get("/api/v1/anything"), *args)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert set(json.loads(response.content)["error"]) == {"code", "message", "fields"}


def test_the_admin_keeps_its_html_error_pages(rf):
    from django.http import Http404

    from config.views import page_not_found

    response = page_not_found(rf.get("/admin/no-such-page/"), Http404())

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


GARBAGE_TOKENS = ["%00", "a%00b", "%FF%FE", "x" * 300, "..%2F..%2Fetc"]


@pytest.mark.parametrize("token", GARBAGE_TOKENS)
@pytest.mark.parametrize("hook", ["voice", "gather", "status", "amd"])
def test_a_validly_signed_twilio_webhook_to_a_garbage_token_is_a_json_404(client, settings, hook, token):
    from twilio.request_validator import RequestValidator

    settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL = "a-token", "https://oncall.example.com"
    client.raise_request_exception = False
    path = f"/webhooks/twilio/{hook}/{token}"
    params = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed", "Digits": "1", "AnsweredBy": "human"}
    signature = RequestValidator("a-token").compute_signature(f"{settings.PUBLIC_BASE_URL}{path}", params)

    response = client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)

    # a path that is not UTF-8 is re-quoted by Django, so our signature check reads another URL: 403
    expected = (403, "forbidden") if token == "%FF%FE" else (404, "not_found")
    assert (response.status_code, response.json()["error"]["code"]) == expected, response.content[:200]


@pytest.mark.parametrize("token", GARBAGE_TOKENS)
@pytest.mark.parametrize("hook", ["event", "input"])
def test_a_validly_signed_vonage_webhook_to_a_garbage_token_is_a_json_404(client, settings, hook, token):
    from tests.escalation.test_vonage_escalation import VONAGE_SIGNATURE_SECRET, bearer

    settings.VONAGE_SIGNATURE_SECRET = VONAGE_SIGNATURE_SECRET
    client.raise_request_exception = False
    body = json.dumps({"uuid": "u-1", "status": "completed", "dtmf": {"digits": "1"}}).encode()

    response = client.post(
        f"/webhooks/vonage/{hook}/{token}", body, content_type="application/json", HTTP_AUTHORIZATION=bearer(body)
    )

    assert response.status_code == 404, response.content[:200]
    assert response.json()["error"]["code"] == "not_found"
