"""Phone escalation on Vonage: end to end (the API, a real worker, the live server, the carrier simulator
speaking Vonage's Voice API over HTTP), then Vonage's webhooks as an attacker and an unreliable network
would send them."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from accounts.services import create_api_key
from incidents.models import Alert, Incident
from incidents.services import open_incident
from integrations.models import Integration
from orchestrator.models import CallAttempt
from orchestrator.prompts import ENGLISH, KOREAN
from simulator import Scenario
from tests import factories
from tests.escalation.conftest import VONAGE_APPLICATION_ID, VONAGE_FROM_NUMBER, VONAGE_SIGNATURE_SECRET
from tests.escalation.test_alertmanager_storm import alertmanager_payload
from tests.escalation.test_phone_escalation import incident_when, kinds, post_alert
from tests.helpers import wait_until
from tests.integrations.receivers import HTTPReceiver


def spoken(call) -> list[str]:
    return [say["text"] for say in call.says]


def all_callbacks_accepted(call) -> bool:
    return bool(call.callback_responses) and all(200 <= status < 300 for _, status in call.callback_responses)


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_primary_presses_1_and_the_incident_is_acknowledged(vonage_carrier, system_client):
    primary, secondary = factories.contact("Kim", 0), factories.contact("Lee", 0)
    vonage_carrier.set_scenario(primary.phone.removeprefix("+"), Scenario.PRESS_1)
    factories.policy(primary, secondary, ring_timeout_seconds=20)

    incident_id = post_alert(system_client, tts_text="긴급 알림입니다. 서버 A CPU 95퍼센트입니다.")

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement")
    vonage_carrier.wait_until_idle()
    [call] = vonage_carrier.calls
    assert (call.carrier, call.to, call.from_) == ("vonage", primary.phone.removeprefix("+"), VONAGE_FROM_NUMBER)
    assert call.params["ringing_timer"] == "20" and call.params["machine_detection"] == "continue"
    assert incident.acknowledged_by.startswith("contact:Kim")
    attempt = CallAttempt.objects.get(incident=incident)
    assert (attempt.digits, attempt.answered_by, attempt.provider, attempt.status) == (
        "1",
        "human",
        "vonage",
        "completed",
    )
    assert attempt.provider_call_id == call.sid
    timeline = kinds(incident)
    for kind in ("created", "call_queued", "dialing", "ringing", "answered", "digit_pressed", "acknowledged"):
        assert kind in timeline, f"{kind} missing from {timeline}"
    assert timeline.index("answered") < timeline.index("digit_pressed") < timeline.index("acknowledged")
    assert "서버 A CPU 95퍼센트" in spoken(call)[0] and KOREAN.menu in spoken(call)[0]
    assert spoken(call)[-1] == KOREAN.acknowledged and {say["language"] for say in call.says} == {"ko-KR"}
    assert all_callbacks_accepted(call)


@pytest.mark.e2e
def test_primary_does_not_answer_and_the_secondary_presses_1(vonage_carrier, system_client):
    primary, secondary = factories.contact("Kim", 3), factories.contact("Lee", 1)  # 3: no answer, 1: presses 1
    factories.policy(primary, secondary)

    incident_id = post_alert(system_client)

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement by the secondary")
    vonage_carrier.wait_until_idle()
    assert [call.to for call in vonage_carrier.calls] == [primary.phone[1:], secondary.phone[1:]]
    assert incident.acknowledged_by.startswith("contact:Lee")
    statuses = list(CallAttempt.objects.filter(incident=incident).order_by("step").values_list("status", flat=True))
    assert statuses == ["no_answer", "completed"]
    assert "no_answer" in kinds(incident) and "escalated" in kinds(incident)


@pytest.mark.e2e
def test_nobody_answers_max_attempts_calls_then_exhausted_and_the_fallback_goes_out(vonage_carrier, system_client):
    factories.policy(factories.contact("Kim", 3), factories.contact("Lee", 4), max_attempts=3)  # no answer, busy
    with HTTPReceiver() as receiver:
        Integration.objects.create(
            integration_id="ops",
            name="ops",
            type="webhook",
            provider="webhook",
            endpoint_url=receiver.url,
            events=["incident.exhausted"],
        )

        incident_id = post_alert(system_client)

        incident = incident_when(incident_id, lambda i: i.exhausted, "exhaustion")
        delivered = receiver.wait_for(1)
    vonage_carrier.wait_until_idle()
    assert [call.scenario for call in vonage_carrier.calls] == [Scenario.NO_ANSWER, Scenario.BUSY, Scenario.NO_ANSWER]
    assert incident.state == "exhausted"
    assert incident.exhausted_reason == "nobody pressed 1 after 3 call(s): 2 not answered, 1 busy"
    statuses = CallAttempt.objects.filter(incident=incident).order_by("step").values_list("status", flat=True)
    assert list(statuses) == ["no_answer", "busy", "no_answer"]
    assert kinds(incident)[-2:] == ["exhausted", "notified"]
    assert [request.json()["event"] for request in delivered] == ["incident.exhausted"]


@pytest.mark.e2e
def test_voicemail_never_acknowledges_and_the_escalation_moves_on(vonage_carrier, system_client):
    primary, secondary = factories.contact("Kim", 5), factories.contact("Lee", 1)  # 5: voicemail
    factories.policy(primary, secondary)

    incident_id = post_alert(system_client, summary="디스크 가득 참")

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement after voicemail")
    vonage_carrier.wait_until_idle()
    first = CallAttempt.objects.get(incident=incident, step=1)
    assert (first.answered_by, first.digits) == ("machine", "")
    assert incident.acknowledged_by.startswith("contact:Lee") and "machine" in kinds(incident)
    # the voicemail still got the message (introduced by the preamble: the alert has no script)
    assert spoken(vonage_carrier.calls[0])[0].startswith(f"{KOREAN.preamble} 디스크 가득 참")


@pytest.mark.e2e
def test_pressing_2_passes_to_the_next_person_at_once(vonage_carrier, system_client):
    primary, secondary = factories.contact("Kim", 2), factories.contact("Lee", 1)
    factories.policy(primary, secondary)

    incident_id = post_alert(system_client)

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement by the secondary")
    vonage_carrier.wait_until_idle()
    assert [call.to for call in vonage_carrier.calls] == [primary.phone[1:], secondary.phone[1:]]
    assert CallAttempt.objects.get(incident=incident, step=1).digits == "2"
    assert spoken(vonage_carrier.calls[0])[-1] == KOREAN.escalated


@pytest.mark.e2e
def test_a_meaningless_key_repeats_the_message_and_1_then_acknowledges(vonage_carrier, system_client):
    primary = factories.contact("Kim", 0)
    vonage_carrier.set_scenario(primary.phone[1:], Scenario.PRESS_9)
    factories.policy(primary)

    incident_id = post_alert(system_client, summary="결제 오류 급증")

    incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement on the second round")
    vonage_carrier.wait_until_idle()
    [call] = vonage_carrier.calls
    assert call.digits == "91" and spoken(call)[1].startswith(f"{KOREAN.invalid_key} {KOREAN.preamble} 결제 오류 급증")


@pytest.mark.e2e
def test_acknowledged_through_the_api_no_further_call_is_placed(vonage_carrier, system_client):
    primary, secondary = factories.contact("Kim", 6), factories.contact("Lee", 1)  # 6: answers, stays silent
    factories.policy(primary, secondary, message_repeats=2)
    incident_id = post_alert(system_client)
    wait_until(lambda: vonage_carrier.calls, what="the first call")

    response = system_client.post(f"/api/v1/incidents/{incident_id}/acknowledge")

    assert response.status_code == 200 and response.json()["state"] == "acknowledged"
    vonage_carrier.wait_until_idle()
    assert [call.to for call in vonage_carrier.calls] == [primary.phone[1:]]
    assert Incident.objects.get(pk=incident_id).current_step == 1


@pytest.mark.e2e
def test_an_english_contact_hears_english(vonage_carrier, system_client):
    factories.policy(factories.contact("Alex", 1, language="en-US"))

    incident_id = post_alert(system_client, summary="Checkout errors above 5%")

    incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement")
    vonage_carrier.wait_until_idle()
    [call] = vonage_carrier.calls
    assert spoken(call) == [f"{ENGLISH.preamble} Checkout errors above 5% {ENGLISH.menu}", ENGLISH.acknowledged]
    assert {say["language"] for say in call.says} == {"en-US"}


@pytest.mark.e2e
def test_fifty_concurrent_copies_of_a_group_open_one_incident_and_one_call(vonage_carrier, live_server):
    vonage_carrier.ring_seconds = 3.0
    primary = factories.contact("Kim", 3)
    factories.policy(primary, factories.contact("Lee", 3))
    _, raw_key = create_api_key(name="alertmanager", scopes=["alerts:write"])
    url = f"{live_server.url}/api/v1/alerts/alertmanager"
    headers = {"Authorization": f"Api-Key {raw_key}"}

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(
            pool.map(lambda _: requests.post(url, json=alertmanager_payload(), headers=headers, timeout=30), range(50))
        )

    codes = sorted(response.status_code for response in responses)
    assert codes == [200] * 49 + [201], codes
    assert len({response.json()["incident_id"] for response in responses}) == 1
    incident = Incident.objects.get()
    assert Alert.objects.filter(incident=incident).count() == 50
    wait_until(lambda: vonage_carrier.calls, what="the first call")

    resolved = requests.post(url, json=alertmanager_payload("resolved"), headers=headers, timeout=10)

    assert resolved.status_code == 200 and resolved.json()["resolved"] is True
    vonage_carrier.wait_until_idle()
    incident.refresh_from_db()
    assert incident.state == "resolved"
    assert [call.to for call in vonage_carrier.calls] == [primary.phone[1:]]
    assert CallAttempt.objects.filter(incident=incident).count() == 1


# --- the webhooks, one request at a time --------------------------------------------------------


@pytest.fixture
def attempt(db, settings):
    settings.VONAGE_SIGNATURE_SECRET = VONAGE_SIGNATURE_SECRET
    settings.VONAGE_APPLICATION_ID = VONAGE_APPLICATION_ID
    settings.PUBLIC_BASE_URL = "https://oncall.example.com"
    factories.policy(factories.contact("Kim"), factories.contact("Lee"), max_attempts=4)
    first = CallAttempt.objects.get(incident=open_incident(summary="디스크 95%", dedup_key="disk").incident)
    first.status = "dialing"  # as the dial task leaves it
    first.save()
    return first


def bearer(body: bytes, *, secret: str = VONAGE_SIGNATURE_SECRET, age: float = 0, **claims) -> str:
    """Authorization as Vonage signs a webhook: HS256, the SHA-256 of the exact body in payload_hash
    (a claim given as None is left out)."""
    standard = {
        "iat": int(time.time() - age),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "application_id": VONAGE_APPLICATION_ID,
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    signed = {name: value for name, value in (standard | claims).items() if value is not None}
    return f"Bearer {jwt.encode(signed, secret, algorithm='HS256')}"


def signed_post(client, path: str, payload: dict, **signing):
    body = json.dumps(payload).encode()
    return client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=bearer(body, **signing))


def event(client, attempt, status: str, **extra):
    return signed_post(client, f"/webhooks/vonage/event/{attempt.token}", {"status": status, "uuid": "V-1", **extra})


def keypress(client, token: str, digits: str, round_number: int = 1):
    payload = {"dtmf": {"digits": digits, "timed_out": not digits}, "uuid": "V-1"}
    return signed_post(client, f"/webhooks/vonage/input/{token}?round={round_number}", payload)


def snapshot(attempt) -> tuple:
    incident = Incident.objects.get(pk=attempt.incident_id)
    attempts = incident.attempts.order_by("step").values_list("step", "status", "digits", "answered_by")
    return incident.state, incident.current_step, list(attempts), incident.events.count()


def unsigned_none(body: bytes) -> str:
    """A JWT with alg "none": claims anyone can write, which must never pass for Vonage's."""
    claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}
    return "Bearer " + jwt.encode(claims, None, algorithm="none")


# Each makes the Authorization header of a forged, replayed or altered request for a body.
FORGERIES = {
    "unsigned": lambda body: None,
    "another-secret": lambda body: bearer(body, secret="an-attacker-secret-of-at-least-32-bytes!"),
    "old-token": lambda body: bearer(body, age=301),
    "issued-in-the-future": lambda body: bearer(body, age=-600),
    "tampered-body": lambda body: bearer(b'{"status": "ringing", "dtmf": {"digits": "2"}}'),
    "no-payload-hash": lambda body: bearer(body, payload_hash=None),
    "another-application": lambda body: bearer(body, application_id="00000000-0000-4000-8000-000000000000"),
    "alg-none": unsigned_none,
    "basic-scheme": lambda body: "Basic " + bearer(body).removeprefix("Bearer "),
}


@pytest.mark.parametrize("endpoint", ["input", "event"])
@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_old_or_tampered_callback_is_refused_and_changes_nothing(client, attempt, endpoint, forgery):
    before = snapshot(attempt)
    payload = {"dtmf": {"digits": "1", "timed_out": False}} if endpoint == "input" else {"status": "completed"}
    body = json.dumps(payload).encode()
    authorization = FORGERIES[forgery](body)
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.post(f"/webhooks/vonage/{endpoint}/{attempt.token}", body, "application/json", **headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden" and response.json()["error"]["fields"] == {}
    assert snapshot(attempt) == before


@pytest.mark.parametrize("age", [240, -10], ids=["four-minutes-old", "clock-ten-seconds-ahead"])
def test_a_token_within_the_window_is_accepted(client, attempt, age):
    response = signed_post(client, f"/webhooks/vonage/event/{attempt.token}", {"status": "ringing"}, age=age)

    assert response.status_code == 204 and CallAttempt.objects.get(pk=attempt.pk).status == "ringing"


def test_without_a_signature_secret_nothing_is_trusted(client, attempt, settings):
    settings.VONAGE_SIGNATURE_SECRET = ""
    before = snapshot(attempt)

    response = signed_post(client, f"/webhooks/vonage/input/{attempt.token}", {"dtmf": {"digits": "1"}})

    assert response.status_code == 403 and snapshot(attempt) == before


def test_a_signed_keypress_acknowledges_and_confirms_in_korean(client, attempt):
    response = keypress(client, attempt.token, "1")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == [{"action": "talk", "text": KOREAN.acknowledged, "language": "ko-KR"}]
    assert Incident.objects.get(pk=attempt.incident_id).state == "acknowledged"
    assert keypress(client, attempt.token, "1").json()[0]["text"] == KOREAN.already_handled


def test_a_wrong_key_or_silence_repeats_the_message_then_says_goodbye(client, attempt):
    wrong_key, silence = keypress(client, attempt.token, "9", 1).json(), keypress(client, attempt.token, "", 2).json()
    last_round = keypress(client, attempt.token, "", 3).json()  # the policy's message_repeats: 3

    # a summary-only alert is introduced by the preamble, after the wrong-key notice
    expected_start = f"{KOREAN.invalid_key} {KOREAN.preamble} 디스크 95%"
    assert wrong_key[0]["text"].startswith(expected_start) and wrong_key[0]["bargeIn"] is True
    assert wrong_key[1]["eventUrl"] == [f"https://oncall.example.com/webhooks/vonage/input/{attempt.token}?round=2"]
    assert silence[0]["text"] == f"{KOREAN.preamble} 디스크 95% {KOREAN.menu}"
    assert silence[1]["eventUrl"][0].endswith("?round=3")
    assert last_round == [{"action": "talk", "text": KOREAN.goodbye_no_input, "language": "ko-KR"}]
    assert snapshot(attempt)[:2] == ("triggered", 1) and CallAttempt.objects.get(pk=attempt.pk).digits == "9"


def test_pressing_2_rings_the_next_person(client, attempt):
    assert keypress(client, attempt.token, "2").json()[0]["text"] == KOREAN.escalated
    assert snapshot(attempt)[1] == 2


def test_an_english_contact_hears_english_after_a_wrong_key(client, attempt):
    factories.policy(factories.contact("Alex", language="en-US"))
    english = CallAttempt.objects.get(incident=open_incident(summary="Disk 95%").incident)

    ncco = keypress(client, english.token, "7").json()

    expected = f"{ENGLISH.invalid_key} {ENGLISH.preamble} Disk 95% {ENGLISH.menu}"
    assert ncco[0]["language"] == "en-US" and ncco[0]["text"] == expected


def test_an_unknown_token_changes_nothing(client, attempt):
    before = snapshot(attempt)

    assert keypress(client, "not-a-token", "1").json()[0]["text"] == KOREAN.already_handled
    assert signed_post(client, "/webhooks/vonage/event/not-a-token", {"status": "completed"}).status_code == 204

    assert snapshot(attempt) == before


def test_answered_is_never_an_acknowledgement_and_a_machine_moves_on_at_once(client, attempt):
    assert event(client, attempt, "answered").status_code == 204
    assert snapshot(attempt)[:2] == ("triggered", 1)
    assert CallAttempt.objects.get(pk=attempt.pk).status == "in_progress"

    assert event(client, attempt, "machine", sub_state="beep_start").status_code == 204

    assert snapshot(attempt)[:2] == ("triggered", 2)
    assert CallAttempt.objects.get(pk=attempt.pk).answered_by == "machine"


FINAL_SEQUENCE = ["started", "ringing", "answered", "human", "completed"]


@pytest.mark.parametrize(
    "order",
    [[0, 1, 2, 3, 4], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], [4, 3, 2, 1, 0], [1, 4, 0, 3, 2, 4, 1]],
    ids=["in-order", "each-twice", "reversed", "shuffled-with-repeats"],
)
def test_repeated_and_reordered_events_leave_the_same_final_state(client, attempt, order, settings):
    settings.KEYPRESS_GRACE_SECONDS = 0  # no keypress is on its way here: move on at the hang-up
    for index in order:
        assert event(client, attempt, FINAL_SEQUENCE[index]).status_code == 204

    first = CallAttempt.objects.get(pk=attempt.pk)
    assert (first.status, first.provider_call_id, first.answered_by) == ("completed", "V-1", "human")
    incident = Incident.objects.get(pk=attempt.incident_id)
    assert incident.current_step == 2 and incident.attempts.count() == 2
    assert incident.events.filter(kind="escalated").count() == 1


ENDINGS = {
    "timeout": "no_answer",
    "unanswered": "no_answer",
    "busy": "busy",
    "rejected": "failed",
    "failed": "failed",
    "cancelled": "canceled",
    "disconnected": "completed",
}


@pytest.mark.parametrize(("status", "expected"), ENDINGS.items())
def test_each_ending_moves_on_once_and_a_late_event_changes_nothing(client, attempt, status, expected, settings):
    settings.KEYPRESS_GRACE_SECONDS = 0  # a disconnect after an answer would otherwise wait for a digit in flight
    event(client, attempt, status, detail="cannot_route")
    event(client, attempt, "completed")
    event(client, attempt, status)

    assert CallAttempt.objects.get(pk=attempt.pk).status == expected
    incident = Incident.objects.get(pk=attempt.incident_id)
    assert incident.current_step == 2 and incident.events.filter(kind="escalated").count() == 1


def test_an_unknown_status_is_kept_out_and_is_not_an_error(client, attempt):
    before = snapshot(attempt)

    assert event(client, attempt, "teleported").status_code == 204
    assert signed_post(client, f"/webhooks/vonage/event/{attempt.token}", {"type": "transfer"}).status_code == 204

    assert snapshot(attempt) == before


def test_a_signed_body_that_is_not_a_json_object_is_a_400_and_get_is_a_405(client, attempt):
    path = f"/webhooks/vonage/event/{attempt.token}"

    malformed = client.post(path, b"[1]", "application/json", HTTP_AUTHORIZATION=bearer(b"[1]"))

    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_request"
    assert client.get(path).status_code == 405


def test_a_captured_webhook_replayed_verbatim_is_refused(client, attempt):
    # given a signed "completed" event that was accepted once
    body = json.dumps({"status": "ringing", "uuid": "V-1"}).encode()
    authorization = bearer(body)
    path = f"/webhooks/vonage/event/{attempt.token}"
    assert client.post(path, body, "application/json", HTTP_AUTHORIZATION=authorization).status_code == 204
    before = snapshot(attempt)

    # when the same request (same JWT) is sent again within its five minutes
    replay = client.post(path, body, "application/json", HTTP_AUTHORIZATION=authorization)

    # then it is refused and changes nothing
    assert replay.status_code == 403 and snapshot(attempt) == before


def test_a_webhook_about_another_call_sent_to_this_attempt_is_refused(client, attempt):
    # given the attempt's call is known to be V-1
    CallAttempt.objects.filter(pk=attempt.pk).update(provider_call_id="V-1")
    before = snapshot(attempt)

    # when a freshly signed keypress captured from another call (V-2) is aimed at this attempt's URL
    payload = {"dtmf": {"digits": "1", "timed_out": False}, "uuid": "V-2"}
    response = signed_post(client, f"/webhooks/vonage/input/{attempt.token}", payload)

    # then it is refused: the body names another call than the one at this URL
    assert response.status_code == 403 and snapshot(attempt) == before
