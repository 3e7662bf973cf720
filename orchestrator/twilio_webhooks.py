"""Twilio's webhooks: the TwiML we serve (voice, gather) and the callbacks (status, machine detection).

Every request must carry a valid `X-Twilio-Signature` computed over PUBLIC_BASE_URL + path, so the
check also holds behind a TLS proxy; a forgery gets 403 and changes nothing. The attempt is named
by an unguessable token in the path, which also lets callbacks arrive before we know the call SID.
"""

from __future__ import annotations

import logging
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from config.errors import json_error
from config.logging import mask_webhook_path
from orchestrator import selectors, services
from orchestrator.message_rounds import message_round
from orchestrator.models import AttemptStatus
from orchestrator.prompts import prompts_for
from orchestrator.services import KeypressOutcome

logger = logging.getLogger(__name__)

GATHER_TIMEOUT_SECONDS = 6

TWILIO_STATUSES = {
    "queued": AttemptStatus.INITIATED,
    "initiated": AttemptStatus.INITIATED,
    "ringing": AttemptStatus.RINGING,
    "in-progress": AttemptStatus.IN_PROGRESS,
    "answered": AttemptStatus.IN_PROGRESS,
    "completed": AttemptStatus.COMPLETED,
    "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER,
    "failed": AttemptStatus.FAILED,
    "canceled": AttemptStatus.CANCELED,
}


def twilio_signed(view):
    """Refuses anything Twilio did not sign with our auth token (403, nothing changes)."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        if not settings.TWILIO_AUTH_TOKEN:
            # an empty key signs anything anyone can compute: without a token nothing is trusted
            logger.error("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set")
            message = "TWILIO_AUTH_TOKEN is not set on this server, so no Twilio webhook can be trusted."
            return json_error(403, "forbidden", message)
        signature = request.headers.get("X-Twilio-Signature", "")
        url = f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"
        params = {key: request.POST.get(key) for key in request.POST}
        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
        if not signature or not validator.validate(url, params, signature):
            logger.warning(
                "rejected unsigned or forged Twilio webhook", extra={"path": mask_webhook_path(request.path)}
            )
            return json_error(403, "forbidden", "Invalid or missing X-Twilio-Signature.")
        if not selectors.is_attempt_token(token):
            return json_error(404, "not_found", "No call has this webhook URL.")
        return view(request, token)

    wrapper.carrier_webhook = "twilio-signature"  # the route walk sees an explicit permission
    return wrapper


def _twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="application/xml")


def _url(name: str, token: str, round_number: int) -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse(f'twilio-{name}', kwargs={'token': token})}?round={round_number}"


def _say(target, text: str, language: str) -> None:
    voice = settings.TWILIO_VOICE_KO if language.startswith("ko") else settings.TWILIO_VOICE_EN
    target.say(text, language=language, voice=voice)


@twilio_signed
def voice(request: HttpRequest, token: str) -> HttpResponse:
    """The message inside a one-digit gather; with no input, say it again, then hang up."""
    script = selectors.call_script(token)
    response = VoiceResponse()
    if script is None:
        response.hangup()
        return _twiml(response)
    prompts = prompts_for(script.language)
    if not script.still_triggered:
        _say(response, prompts.already_handled, script.language)
        response.hangup()
        return _twiml(response)
    round_number = message_round(request)
    gather = response.gather(
        num_digits=1, action=_url("gather", token, round_number), method="POST", timeout=GATHER_TIMEOUT_SECONDS
    )
    _say(gather, prompts.alert(script.text, scripted=script.scripted), script.language)
    if round_number < script.repeats:
        response.redirect(_url("voice", token, round_number + 1), method="POST")
    else:
        _say(response, prompts.goodbye_no_input, script.language)
        response.hangup()
    return _twiml(response)


@twilio_signed
def gather(request: HttpRequest, token: str) -> HttpResponse:
    outcome = services.apply_keypress(token, request.POST.get("Digits", ""))
    script = selectors.call_script(token)
    language = script.language if script else "ko-KR"
    prompts = prompts_for(language)
    response = VoiceResponse()
    round_number = message_round(request)
    if outcome is KeypressOutcome.ACKNOWLEDGED:
        _say(response, prompts.acknowledged, language)
        response.hangup()
    elif outcome is KeypressOutcome.ESCALATED:
        _say(response, prompts.escalated, language)
        response.hangup()
    elif outcome is KeypressOutcome.NOBODY_LEFT:
        _say(response, prompts.nobody_left, language)
        response.hangup()
    elif outcome in (KeypressOutcome.ALREADY_HANDLED, KeypressOutcome.UNKNOWN_CALL):
        _say(response, prompts.already_handled, language)
        response.hangup()
    elif script is not None and round_number < script.repeats:
        _say(response, prompts.invalid_key, language)
        response.redirect(_url("voice", token, round_number + 1), method="POST")
    else:
        _say(response, prompts.goodbye_no_input, language)
        response.hangup()
    return _twiml(response)


@twilio_signed
def status(request: HttpRequest, token: str) -> HttpResponse:
    raw_status = request.POST.get("CallStatus", "")
    mapped = TWILIO_STATUSES.get(raw_status)
    if mapped is None:
        logger.warning("unknown Twilio call status kept out of the state machine", extra={"status": raw_status})
        return HttpResponse(status=204)
    services.apply_call_status(
        token,
        mapped,
        provider_call_id=request.POST.get("CallSid", "")[:64],
        detail=f"Twilio {raw_status}"
        + (f", SIP {request.POST['SipResponseCode']}" if "SipResponseCode" in request.POST else ""),
        carrier="twilio",
    )
    return HttpResponse(status=204)


@twilio_signed
def machine_detection(request: HttpRequest, token: str) -> HttpResponse:
    answered_by = request.POST.get("AnsweredBy", "unknown")
    if answered_by == "unknown":
        return HttpResponse(status=204)  # Twilio could not tell: only a keypress can acknowledge anyway
    is_machine = answered_by.startswith("machine") or answered_by == "fax"
    services.apply_machine_detection(token, is_machine=is_machine, raw=answered_by, carrier="twilio")
    return HttpResponse(status=204)
