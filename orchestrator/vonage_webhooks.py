"""Vonage's webhooks: call events (status, machine detection) and the input result, which we answer
with the next NCCO.

Every request must carry `Authorization: Bearer <JWT>` signed HS256 with VONAGE_SIGNATURE_SECRET,
issued within the last five minutes, whose `payload_hash` is the SHA-256 of the exact body: the JWT
does not cover the URL, so the body hash is what binds it to this request. A forgery, an old token
or a changed body gets 403 and changes nothing. The attempt is named by the unguessable token in the
path, so events may arrive before we know the call's uuid.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from functools import wraps
from typing import Any

import jwt
import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.errors import json_error
from config.logging import mask_webhook_path
from config.redis import redis_client
from orchestrator import selectors, services
from orchestrator.message_rounds import message_round
from orchestrator.models import AttemptStatus
from orchestrator.prompts import prompts_for
from orchestrator.services import KeypressOutcome
from orchestrator.voice.vonage import message_ncco, talk

logger = logging.getLogger(__name__)

MAX_TOKEN_AGE_SECONDS = 300
CLOCK_SKEW_SECONDS = 30

VONAGE_STATUSES = {
    "started": AttemptStatus.INITIATED,
    "ringing": AttemptStatus.RINGING,
    "answered": AttemptStatus.IN_PROGRESS,
    "completed": AttemptStatus.COMPLETED,
    "disconnected": AttemptStatus.COMPLETED,
    "busy": AttemptStatus.BUSY,
    "cancelled": AttemptStatus.CANCELED,
    "failed": AttemptStatus.FAILED,
    "rejected": AttemptStatus.FAILED,
    "timeout": AttemptStatus.NO_ANSWER,
    "unanswered": AttemptStatus.NO_ANSWER,
}
MACHINE_DETECTION_STATUSES = {"machine": True, "human": False}


def signature_failure(authorization: str, body: bytes) -> str | None:
    """Why the request is not Vonage's signed webhook for this body, or None when it is."""
    secret = getattr(settings, "VONAGE_SIGNATURE_SECRET", "")
    if not secret:
        return "VONAGE_SIGNATURE_SECRET is not set, so no webhook can be trusted"
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "missing Authorization: Bearer <JWT>"
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            options={"require": ["iat", "payload_hash"]},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.PyJWTError as exc:
        return f"invalid JWT ({exc})"
    issued_at = claims["iat"]
    if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
        return "iat is not a number"
    age = time.time() - issued_at
    if age > MAX_TOKEN_AGE_SECONDS:
        return f"the JWT was issued {int(age)}s ago: too old"
    if age < -CLOCK_SKEW_SECONDS:
        return "the JWT is issued in the future"
    expected_hash = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(str(claims["payload_hash"]).encode(), expected_hash.encode()):
        return "payload_hash does not match the body"
    application_id = getattr(settings, "VONAGE_APPLICATION_ID", "")
    if application_id and "application_id" in claims and str(claims["application_id"]) != application_id:
        return "the JWT names another application"
    if claims.get("jti") and not _first_use_of(str(claims["jti"])):
        return "this JWT was used before (a replayed webhook)"
    return None


def _first_use_of(jti: str) -> bool:
    """Each signed webhook is accepted once: its jti is remembered for as long as the JWT could be
    accepted. Without Redis the check is skipped (logged): the body hash, the age limit and the call
    uuid binding still hold."""
    try:
        return bool(
            redis_client().set(
                f"oncall:vonage:jti:{jti[:100]}", "1", nx=True, ex=MAX_TOKEN_AGE_SECONDS + 2 * CLOCK_SKEW_SECONDS
            )
        )
    except redis.RedisError:
        logger.warning("Vonage webhook replay check skipped: Redis unavailable")
        return True


def _names_another_call(token: str, payload: dict[str, Any]) -> bool:
    """The JWT covers the body but not the URL: a captured webhook sent to another attempt's URL
    carries a call uuid that is not that attempt's call."""
    call_uuid = payload.get("uuid")
    if not isinstance(call_uuid, str) or not call_uuid:
        return False
    known = selectors.provider_call_id(token)
    return bool(known) and known != call_uuid


def _error(status: int, code: str, message: str) -> JsonResponse:
    return json_error(status, code, message)


def vonage_signed(view):
    """Refuses anything Vonage did not sign for exactly this body (403, nothing changes), and hands
    the view the parsed JSON body."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        failure = signature_failure(request.headers.get("Authorization", ""), request.body)
        if failure is not None:
            logger.warning(
                "rejected an unsigned or forged Vonage webhook",
                extra={"path": mask_webhook_path(request.path), "why": failure},
            )
            return _error(403, "forbidden", "Invalid or missing Vonage signature (Authorization: Bearer JWT).")
        if not selectors.is_attempt_token(token):
            return _error(404, "not_found", "No call has this webhook URL.")
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _error(400, "malformed_request", "The body must be a JSON object.")
        if _names_another_call(token, payload):
            logger.warning("Vonage webhook for another call refused", extra={"path": mask_webhook_path(request.path)})
            return _error(403, "forbidden", "This webhook is about another call than the one at this URL.")
        return view(request, token, payload)

    wrapper.carrier_webhook = "vonage-signature"  # the route walk sees an explicit permission
    return wrapper


@vonage_signed
def event(request: HttpRequest, token: str, payload: dict[str, Any]) -> HttpResponse:
    """A call event. Answered is never an acknowledgement: only a keypress on the input is."""
    raw_status = str(payload.get("status", ""))
    if raw_status in MACHINE_DETECTION_STATUSES:
        raw = f"Vonage {raw_status}" + (f", {payload['sub_state']}" if payload.get("sub_state") else "")
        services.apply_machine_detection(
            token, is_machine=MACHINE_DETECTION_STATUSES[raw_status], raw=raw, carrier="vonage"
        )
        return HttpResponse(status=204)
    mapped = VONAGE_STATUSES.get(raw_status)
    if mapped is None:
        logger.warning("unknown Vonage call event kept out of the state machine", extra={"status": raw_status[:40]})
        return HttpResponse(status=204)
    detail = f"Vonage {raw_status}" + (f", {payload['detail']}" if isinstance(payload.get("detail"), str) else "")
    services.apply_call_status(
        token, mapped, provider_call_id=str(payload.get("uuid", ""))[:64], detail=detail[:200], carrier="vonage"
    )
    return HttpResponse(status=204)


def _digits(payload: dict[str, Any]) -> str:
    """The digits of an input result: `dtmf: {"digits": ...}`, or the older flat `dtmf: "..."`."""
    dtmf = payload.get("dtmf")
    if isinstance(dtmf, dict):
        dtmf = dtmf.get("digits")
    return dtmf if isinstance(dtmf, str) else ""


@vonage_signed
def user_input(request: HttpRequest, token: str, payload: dict[str, Any]) -> HttpResponse:
    """The callee's keypress (or silence) on round N: confirm, pass on, or say the message again
    until the policy's `message_repeats` rounds are spent."""
    digits = _digits(payload)
    outcome = services.apply_keypress(token, digits)
    script = selectors.call_script(token)
    language = script.language if script else "ko-KR"
    prompts = prompts_for(language)
    round_number = message_round(request)
    if outcome is KeypressOutcome.ACKNOWLEDGED:
        ncco = [talk(prompts.acknowledged, language)]
    elif outcome is KeypressOutcome.ESCALATED:
        ncco = [talk(prompts.escalated, language)]
    elif outcome is KeypressOutcome.NOBODY_LEFT:
        ncco = [talk(prompts.nobody_left, language)]
    elif script is None or outcome is KeypressOutcome.ALREADY_HANDLED or not script.still_triggered:
        ncco = [talk(prompts.already_handled, language)]
    elif round_number < script.repeats:
        preface = prompts.invalid_key if digits else ""
        ncco = message_ncco(token, script, round_number + 1, preface=preface)
    else:
        ncco = [talk(prompts.goodbye_no_input, language)]
    return JsonResponse(ncco, safe=False)
