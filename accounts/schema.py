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
