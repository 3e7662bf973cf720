"""The alert fast lane: a duplicate alert from an API key answered before Django's request stack.

In an alert storm nearly every post is a duplicate: it only joins an open incident. Through Django's
middleware and DRF such a post cost about 5 ms of CPU, four fifths of it in the layers around the
one statement that stores it (bench/alert_storm.py, py-spy). This WSGI wrapper takes the posts to
the alert routes that are plain duplicates and answers them itself, with the same checks in the
same order, and the same functions, as the DRF views:

- the Host is one of ALLOWED_HOSTS and the request is secure when SECURE_SSL_REDIRECT asks for it;
- `Authorization: Api-Key …` is a valid, unrevoked, unexpired key (accounts.selectors, cached for
  API_KEY_CACHE_SECONDS) with the `alerts:write` scope; its use is stamped as the API stamps it;
- the body is JSON within MAX_REQUEST_BODY_BYTES (read by the API's own lenient parser) and valid
  for the route's serializer (an Alertmanager body of the plain shape is known valid without it:
  plain_alertmanager);
- the key's alert rate allows it (the same token bucket as AlertIngestionThrottle);
- the policy it names is known (an unknown one adds a warning to the timeline: Django's path);
- and the alert joins an open incident without a transition (incidents.duplicates, one statement).

Whatever fails one of these, and every alert that opens, re-triggers or resolves an incident, goes
on to Django untouched (its body handed on), which answers exactly as before: 401, 403, 400, 429,
a new incident. An error inside the lane does the same, before anything is stored; the lane never
answers an error itself. The answer is the DRF view's: status, JSON body and headers (tested side by
side in tests/incidents/test_fast_lane.py); it is counted in the API metrics under its route.

On PostgreSQL only (ALERT_FAST_LANE, default on): there a duplicate is stored by one statement that
either commits or stores nothing, so handing an alert on after an error can never store it twice.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.handlers.wsgi import WSGIRequest
from django.db import DatabaseError, connection
from rest_framework.authentication import get_authorization_header

from accounts.audit import actor_name
from accounts.authentication import APIKeyPrincipal
from accounts.models import Scope
from accounts.selectors import APIKeyRejected, api_key_from_secret
from accounts.services import record_api_key_use
from accounts.throttles import alert_rate_wait
from config.logging import request_id_var
from config.metrics import observe_request
from config.middleware import SAFE_REQUEST_ID
from config.parsers import loads_leniently
from incidents import duplicates, ingestion
from incidents.models import Source
from incidents.serializers import AlertmanagerIn, GenericAlertIn, GrafanaIn, validated_or_none
from incidents.services import choose_policy

logger = logging.getLogger(__name__)


def _text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


def plain_alertmanager(data: Any) -> dict | None:
    """What routing reads (status, groupKey, commonLabels) from an Alertmanager notification of the
    plain shape Alertmanager itself sends, or None for any other shape: then AlertmanagerIn decides.

    Plain: version "4" or none, a firing or resolved status, a groupKey string (stripped, as the
    serializer strips it, not blank and at most 10,000 characters), a receiver string, label and
    annotation maps of strings, and a non-empty list of alerts made of the same. AlertmanagerIn
    accepts every such body as sent (tests/incidents/test_fast_lane.py checks it side by side, body
    after body), and checking the shape costs a tenth of running the serializer, which was a third
    of the lane's CPU for a duplicate alert."""
    if not isinstance(data, dict) or data.get("version", "4") != "4":
        return None
    status, group_key = data.get("status"), data.get("groupKey")
    if status not in ("firing", "resolved") or not isinstance(group_key, str):
        return None
    if not isinstance(data.get("receiver", ""), str):
        return None
    group_key = group_key.strip()
    if not group_key or len(group_key) > 10_000:
        return None
    if not all(_text_map(data.get(name, {})) for name in ("groupLabels", "commonLabels", "commonAnnotations")):
        return None
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts or not all(_plain_alert(alert) for alert in alerts):
        return None
    return {"status": status, "groupKey": group_key, "commonLabels": data.get("commonLabels", {})}


def _plain_alert(alert: Any) -> bool:
    return (
        isinstance(alert, dict)
        and alert.get("status", "firing") in ("firing", "resolved")
        and isinstance(alert.get("fingerprint", ""), str)
        and _text_map(alert.get("labels", {}))
        and _text_map(alert.get("annotations", {}))
    )


@dataclass(frozen=True)
class Route:
    serializer: type
    source: str
    reads_policy_query: bool  # Alertmanager and Grafana take ?policy=; the generic API names it in the body
    plain_shape: Callable[[Any], dict | None] | None = None  # a cheaper check for the common shape


ROUTES = {
    "/api/v1/alerts/alertmanager": Route(AlertmanagerIn, Source.ALERTMANAGER, True, plain_alertmanager),
    "/api/v1/alerts/grafana": Route(GrafanaIn, Source.GRAFANA, True),
    "/api/v1/alerts/generic": Route(GenericAlertIn, Source.GENERIC, False),
}

# What Django's middleware and DRF put on the view's answer (the side-by-side test keeps them equal).
STATIC_HEADERS = [
    ("Content-Type", "application/json"),
    ("Vary", "Accept-Language"),
    ("Allow", "POST, OPTIONS"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Content-Language", "en"),
]


class NotHere(Exception):
    """This alert is for Django's path; nothing was stored."""


class JoinMissed(NotHere):
    """The duplicate statement ran and found no incident this alert only joins: Django's path goes
    straight to the locked decision (incidents.duplicates.already_missed) instead of running it again."""

    def __init__(self, dedup_key: str) -> None:
        super().__init__(dedup_key)
        self.dedup_key = dedup_key


class AlertFastLane:
    """WSGI middleware around Django's application (config/wsgi.py)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = ROUTES.get(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
        if route is None or not settings.ALERT_FAST_LANE or connection.vendor != "postgresql":
            return self.app(environ, start_response)
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        missed = None
        try:
            body = _joined(environ, route)
        except JoinMissed as exc:
            body, missed = None, exc.dedup_key
        except NotHere:
            body = None
        except Exception:
            logger.exception("alert fast lane failed; Django's path takes the alert")
            body = None
        finally:
            request_id_var.reset(token)
        if body is None:
            with duplicates.already_missed(missed):
                return self.app(environ, start_response)
        headers = [*STATIC_HEADERS, ("Content-Length", str(len(body))), ("X-Request-ID", request_id)]
        start_response("200 OK", headers)
        observe_request("POST", environ["PATH_INFO"], 200, time.perf_counter() - started)
        return [body]


def _joined(environ: dict, route: Route) -> bytes:
    """The answer's body when the alert joined an open incident; NotHere (nothing stored) otherwise."""
    request = WSGIRequest(environ)
    try:
        request.get_host()
        raw = request.body  # a body over the limit is refused before it is read
    except (DisallowedHost, RequestDataTooBig) as exc:
        raise NotHere from exc  # nothing was read: Django's path answers 400 or 413
    environ["wsgi.input"] = io.BytesIO(raw)  # from here on, Django's path reads the body again from this
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        raise NotHere  # Django's SecurityMiddleware redirects it
    if request.content_type != "application/json":
        raise NotHere
    principal = _api_key_principal(request)
    try:
        data = loads_leniently(raw.decode("utf-8"))  # the API's own parser: odd JSON is stored alike
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotHere from exc
    validated = route.plain_shape(data) if route.plain_shape else None
    if validated is None:
        validated = validated_or_none(route.serializer, data)
    if validated is None:
        raise NotHere
    policy_query = request.GET.get("policy") if route.reads_policy_query else None
    firing = ingestion.firing_alert(route.source, validated, policy=policy_query)
    if firing is None or not firing.dedup_key:
        raise NotHere  # a resolve, or an alert without a key: it may open an incident
    if alert_rate_wait(f"api-key:{principal.api_key.pk}") > 0:
        raise NotHere  # DRF's throttle answers the 429 (an empty bucket is not taken from twice)
    if choose_policy(firing.policy_reference).warnings:
        raise NotHere  # the warning belongs on the incident's timeline
    record_api_key_use(principal.api_key)
    try:
        incident = duplicates.join_as_duplicate(
            firing.dedup_key, source=firing.source, payload=data, actor=actor_name(principal)
        )
    except DatabaseError as exc:
        connection.close_if_unusable_or_obsolete()
        raise NotHere from exc  # one statement: it stored nothing
    if incident is None:
        raise JoinMissed(firing.dedup_key)  # no open incident, or a transition is due: the locked path decides
    answer = {
        "incident_id": incident.pk,
        "state": incident.state,
        "deduplicated": True,
        "warnings": [],
        "resolved": False,
        "retriggered": False,
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def _api_key_principal(request: WSGIRequest) -> APIKeyPrincipal:
    header = get_authorization_header(request).split()
    if len(header) != 2 or header[0].lower() != b"api-key":
        raise NotHere  # a person's token, a malformed header, no header: DRF answers
    try:
        api_key = api_key_from_secret(header[1].decode("ascii"))
    except (UnicodeDecodeError, APIKeyRejected) as exc:
        raise NotHere from exc
    if not api_key.has_scope(Scope.ALERTS_WRITE):
        raise NotHere
    return APIKeyPrincipal(api_key)
