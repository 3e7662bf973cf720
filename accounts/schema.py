"""Tells drf-spectacular how API keys are sent, so Swagger UI offers an "Authorize" box for them."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APIKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create one with `manage.py create_api_key`.",
        }


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "Bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "`Bearer <access_token>` from POST /api/v1/auth/login.",
        }
