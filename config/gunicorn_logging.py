"""gunicorn's access log with carrier webhook tokens masked (`--logger-class`).

Each call attempt's callbacks come to /webhooks/<carrier>/<kind>/<token>, and the token is what lets
a request act on that attempt, so the access log shows /webhooks/twilio/status/*** instead.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from config.logging import mask_webhook_path


class MaskingLogger(Logger):
    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: mask_webhook_path(value) if isinstance(value, str) else value for key, value in atoms.items()}
