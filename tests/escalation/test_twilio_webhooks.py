"""Twilio's callbacks as an attacker and an unreliable network would send them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from twilio.request_validator import RequestValidator

from incidents.models import Incident
from incidents.services import open_incident
from orchestrator.models import CallAttempt
from tests import factories

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "webhook-test-token"
BASE = "https://oncall.example.com"


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE


@pytest.fixture
def attempt():
    factories.policy(factories.contact("Kim"), factories.contact("Lee"), max_attempts=4)
    incident = open_incident(summary="디스크 95%", dedup_key="disk").incident
    first = CallAttempt.objects.get(incident=incident)
    first.status = "dialing"  # as the dial task leaves it
    first.save()
    return first


def signed_post(client, path: str, params: dict, *, token: str = AUTH_TOKEN):
    signature = RequestValidator(token).compute_signature(f"{BASE}{path}", params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def status_path(attempt) -> str:
    return f"/webhooks/twilio/status/{attempt.token}"


def snapshot(attempt) -> tuple:
    incident = Incident.objects.get(pk=attempt.incident_id)
    attempts = list(
        CallAttempt.objects.filter(incident=incident).order_by("step").values_list("step", "status", "digits")
    )
    return incident.state, incident.current_step, attempts, incident.events.count()


def test_an_unsigned_callback_is_refused_and_changes_nothing(client, attempt):
    before = snapshot(attempt)

    response = client.post(f"/webhooks/twilio/gather/{attempt.token}", {"Digits": "1", "CallSid": "CA1"})

    assert response.status_code == 403
    assert snapshot(attempt) == before


def test_a_callback_signed_with_another_token_is_refused(client, attempt):
    before = snapshot(attempt)

    response = signed_post(client, f"/webhooks/twilio/gather/{attempt.token}", {"Digits": "1"}, token="attacker")

    assert response.status_code == 403
    assert snapshot(attempt) == before


def test_a_signature_for_other_parameters_is_refused(client, attempt):
    path = f"/webhooks/twilio/gather/{attempt.token}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE}{path}", {"Digits": "2"})

    response = client.post(path, {"Digits": "1"}, HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 403
    assert Incident.objects.get(pk=attempt.incident_id).state == "triggered"


def test_an_unknown_token_changes_nothing(client, attempt):
    before = snapshot(attempt)

    response = signed_post(client, "/webhooks/twilio/gather/not-a-token", {"Digits": "1"})

    assert response.status_code == 200
    assert "<Hangup" in response.content.decode()
    assert snapshot(attempt) == before


def test_a_signed_keypress_acknowledges_and_confirms_in_korean(client, attempt):
    response = signed_post(client, f"/webhooks/twilio/gather/{attempt.token}", {"Digits": "1", "CallSid": "CA1"})

    assert response.status_code == 200
    assert "확인되었습니다" in response.content.decode()
    assert Incident.objects.get(pk=attempt.incident_id).state == "acknowledged"


def test_the_voice_twiml_gathers_one_digit_around_the_korean_message(client, attempt):
    response = signed_post(client, f"/webhooks/twilio/voice/{attempt.token}", {"CallSid": "CA1"})

    body = response.content.decode()
    assert response["Content-Type"] == "application/xml"
    assert '<Gather action="https://oncall.example.com/webhooks/twilio/gather/' in body
    assert 'numDigits="1"' in body
    assert 'language="ko-KR"' in body
    assert "디스크 95%" in body and "확인하셨으면 1번" in body
    assert "<Redirect" in body  # no input: the message is repeated


def test_english_contacts_hear_english(client, settings):
    factories.policy(factories.contact("Alex", language="en-US"))
    incident = open_incident(summary="Disk 95%").incident
    english = CallAttempt.objects.get(incident=incident)

    body = signed_post(client, f"/webhooks/twilio/voice/{english.token}", {}).content.decode()

    assert 'language="en-US"' in body and "Press 1 to acknowledge" in body


FINAL_SEQUENCE = [
    {"CallStatus": "initiated"},
    {"CallStatus": "ringing"},
    {"CallStatus": "in-progress"},
    {"CallStatus": "completed", "CallDuration": "12"},
]


@pytest.mark.parametrize(
    "order",
    [
        [0, 1, 2, 3],
        [0, 0, 1, 1, 2, 2, 3, 3],  # every callback twice
        [3, 2, 1, 0],  # all reversed
        [1, 3, 0, 2, 3, 1],  # shuffled with repeats
    ],
)
def test_repeated_and_reordered_callbacks_leave_the_same_final_state(client, attempt, order, settings):
    settings.KEYPRESS_GRACE_SECONDS = 0  # no keypress is on its way here: move on at the hang-up
    for index in order:
        response = signed_post(client, status_path(attempt), {"CallSid": "CA9", **FINAL_SEQUENCE[index]})
        assert response.status_code == 204

    first = CallAttempt.objects.get(pk=attempt.pk)
    assert first.status == "completed"
    assert first.provider_call_id == "CA9"
    incident = Incident.objects.get(pk=attempt.incident_id)
    # the call ended without a keypress: exactly one next call was queued, whatever the order
    assert incident.current_step == 2
    assert CallAttempt.objects.filter(incident=incident).count() == 2
    assert incident.events.filter(kind="escalated").count() == 1


def gather_path(attempt) -> str:
    return f"/webhooks/twilio/gather/{attempt.token}"


ACK_CALLBACKS = [
    (status_path, {"CallStatus": "initiated"}),
    (status_path, {"CallStatus": "ringing"}),
    (status_path, {"CallStatus": "in-progress"}),
    (gather_path, {"Digits": "1"}),
    (status_path, {"CallStatus": "completed"}),
]


@pytest.mark.parametrize("seed", range(16))
def test_a_keypress_in_flight_wins_over_the_hang_up_in_any_order(client, attempt, seed):
    # given the callee pressed 1 and hung up: Twilio posts the digit and the hang-up at once
    import random

    order = list(range(len(ACK_CALLBACKS)))
    random.Random(seed).shuffle(order)

    # when the callbacks arrive in a shuffled order
    for index in order:
        path_of, params = ACK_CALLBACKS[index]
        assert signed_post(client, path_of(attempt), {"CallSid": "CA7", **params}).status_code in (200, 204)

    # then the incident is acknowledged by the digit and nobody else was called
    incident = Incident.objects.get(pk=attempt.incident_id)
    assert incident.state == "acknowledged"
    assert CallAttempt.objects.filter(incident=incident).count() == 1


def test_a_hang_up_without_a_keypress_moves_on_once_the_grace_has_passed(client, attempt, settings):
    from orchestrator.timers import check_deadline

    settings.KEYPRESS_GRACE_SECONDS = 5
    signed_post(client, status_path(attempt), {"CallStatus": "in-progress"})
    signed_post(client, status_path(attempt), {"CallStatus": "completed"})
    incident = Incident.objects.get(pk=attempt.incident_id)
    assert incident.current_step == 1 and incident.next_action_at is not None  # waiting for a digit in flight

    # when the grace has passed (the deadline is now in the past)
    Incident.objects.filter(pk=incident.pk).update(next_action_at=incident.next_action_at - timedelta(seconds=6))
    check_deadline(incident.pk, 1)

    # then the next person is called
    assert Incident.objects.get(pk=incident.pk).current_step == 2


def test_a_late_callback_of_an_old_call_does_not_move_the_escalation_again(client, attempt):
    signed_post(client, status_path(attempt), {"CallStatus": "no-answer"})
    signed_post(client, status_path(attempt), {"CallStatus": "no-answer"})
    signed_post(client, status_path(attempt), {"CallStatus": "completed"})

    assert Incident.objects.get(pk=attempt.incident_id).current_step == 2


def test_an_unknown_status_is_kept_out_and_is_not_an_error(client, attempt):
    response = signed_post(client, status_path(attempt), {"CallStatus": "teleported"})

    assert response.status_code == 204
    assert CallAttempt.objects.get(pk=attempt.pk).status == "dialing"


def test_news_from_a_carrier_that_did_not_place_the_attempt_never_moves_it(client, attempt):
    # given the attempt was placed on Vonage after a Twilio timeout (the Twilio call may exist after all)
    attempt.provider = "vonage"
    attempt.save()

    response = signed_post(client, status_path(attempt), {"CallStatus": "no-answer", "CallSid": "CA-late"})

    assert response.status_code == 204
    first = CallAttempt.objects.get(pk=attempt.pk)
    assert (first.status, first.provider_call_id) == ("dialing", "")
    incident = Incident.objects.get(pk=attempt.incident_id)
    assert incident.current_step == 1
    assert incident.events.filter(
        message__startswith="twilio reported no_answer for a call this attempt did not use"
    ).exists()


def test_without_an_auth_token_no_twilio_webhook_is_trusted(client, attempt, settings):
    # given TWILIO_AUTH_TOKEN is unset: an empty key would sign anything anyone can compute
    settings.TWILIO_AUTH_TOKEN = ""
    before = snapshot(attempt)

    response = signed_post(client, f"/webhooks/twilio/gather/{attempt.token}", {"Digits": "1"}, token="")

    assert response.status_code == 403
    assert "TWILIO_AUTH_TOKEN" in response.json()["error"]["message"]
    assert snapshot(attempt) == before
