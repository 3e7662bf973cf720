"""Domain errors (raised by services, turned into 4xx JSON by the API exception handler), and the one
JSON error body every error answer uses: `{"error": {"code", "message", "fields"}}`."""

from __future__ import annotations

from django.http import JsonResponse


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def json_error(status: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    """An error answer outside DRF (plain Django views, carrier webhooks, error handlers)."""
    return JsonResponse(error_body(code, message, fields), status=status)


class DomainError(Exception):
    """A request that is well-formed but not allowed by the current state of things."""

    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Unprocessable(DomainError):
    """Understood, but nothing can be done with it as things stand (e.g. no escalation policy exists)."""

    status_code = 422
    code = "unprocessable"
