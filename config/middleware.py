"""Request ids for log correlation, and JSON bodies for Django's own error pages."""

from __future__ import annotations

import re
import time
import uuid

from django.http import HttpRequest, HttpResponse

from config.errors import json_error
from config.logging import client_var, request_id_var

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes a sane `X-Request-ID` from the caller or makes one, and echoes it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        client_token = client_var.set((request.META.get("REMOTE_ADDR"), request.headers.get("User-Agent", "")[:300]))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            client_var.reset(client_token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """Counts every request by method, URL pattern (never the raw path) and status, and times it
    (aicc_api_requests_total, aicc_api_duration_seconds; config/metrics.py)."""

    def __init__(self, get_response):
        from config.metrics import observe_request, route_of

        self.get_response = get_response
        self.observe_request = observe_request
        self.route_of = route_of

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        self.observe_request(
            request.method, self.route_of(request), response.status_code, time.perf_counter() - started
        )
        return response


ERROR_MESSAGES = {
    400: ("bad_request", "The request could not be understood (check the Host header, the URL and the body)."),
    403: ("forbidden", "You do not have permission to perform this action."),
    404: ("not_found", "No such resource: check the URL."),
    405: ("method_not_allowed", "This method is not allowed on this URL."),
    413: ("request_too_large", "The request body is too large."),
    500: ("server_error", "Internal server error; the request id identifies it in the logs."),
}


# Pages people read in a browser keep Django's HTML error pages: the admin and the status pages.
HTML_PAGE_PREFIXES = ("/admin/", "/status/")


class JsonErrorPagesMiddleware:
    """Turns Django's HTML error pages (unknown route, wrong method, ...) into the API's JSON shape.

    The admin and the status pages keep their HTML pages; everything else a machine may call answers JSON.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        status = response.status_code
        if status not in ERROR_MESSAGES or request.path.startswith(HTML_PAGE_PREFIXES):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        code, message = ERROR_MESSAGES[status]
        if status == 405 and response.get("Allow"):
            message = f"Method {request.method} is not allowed here; allowed: {response['Allow']}."
        if status == 404:
            message = f"No such resource: {request.path}"
        json_response = json_error(status, code, message)
        if response.get("Allow"):
            json_response["Allow"] = response["Allow"]
        return json_response
