"""Django's own error handlers, answering in the API's JSON shape.

They serve what never reaches a view or the JSON error middleware: a Host header we do not serve
(DisallowedHost is turned into a 400 before the inner middleware runs), too many form fields, an
exception in a middleware. The admin keeps Django's HTML pages for people in a browser.
"""

from __future__ import annotations

from django.views import defaults

from config.errors import json_error
from config.middleware import ERROR_MESSAGES, HTML_PAGE_PREFIXES


def _is_admin(request) -> bool:
    """The admin and the status pages: people in a browser."""
    return request.path.startswith(HTML_PAGE_PREFIXES)


def bad_request(request, exception, *args, **kwargs):
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    return json_error(400, *ERROR_MESSAGES[400])


def permission_denied(request, exception, *args, **kwargs):
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return json_error(403, *ERROR_MESSAGES[403])


def page_not_found(request, exception, *args, **kwargs):
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return json_error(404, "not_found", f"No such resource: {request.path}")


def server_error(request, *args, **kwargs):
    message = "Internal server error; the X-Request-ID header identifies it in the logs."
    return json_error(500, "server_error", message)
