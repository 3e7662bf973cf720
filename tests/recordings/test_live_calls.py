"""Recording live carrier calls end to end: the API, a real worker on the real broker, the live server
for the carriers' callbacks, the carrier simulator speaking Twilio's and Vonage's recording APIs over
HTTP, and the recordings store (a folder, or moto's S3 server)."""

from __future__ import annotations

import io

import av
import pytest

from orchestrator.models import AttemptStatus, CallAttempt
from recordings.models import Recording, Status
from recordings.storage import get_storage
from simulator import Scenario
from tests import factories
from tests.escalation.conftest import both_carriers, vonage_carrier, vonage_keys  # noqa: F401 (fixtures)
from tests.helpers import wait_until
from tests.recordings.helpers import SESSION, download, wait_until_settled

pytestmark = pytest.mark.e2e

# Calls long enough to be recorded while they last: each step of the call (a <Say>, a second of a
# gather's timeout) takes this long, and nobody presses a key, so the message is said three times.
SLOW_STEP_SECONDS = 0.15


def post_alert(client) -> int:
    response = client.post("/api/v1/alerts/generic", {"summary": "서버 A CPU 95%"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["incident_id"]


def answered_attempt(incident_id: int) -> CallAttempt:
    return wait_until(
        lambda: CallAttempt.objects.filter(incident_id=incident_id, status=AttemptStatus.IN_PROGRESS).first(),
        what="the call to be answered",
    )


def decoded_seconds(body: bytes) -> float:
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def assert_stored_encrypted(client, recording: Recording, seconds: int) -> None:
    """Stored, its object holds no audio in the clear, and its download decodes to `seconds` of audio."""
    assert recording.status == Status.STORED, recording.failure_reason
    raw = get_storage().open(recording.storage_key).read()
    assert b"RIFF" not in raw[:64] and b"fLaC" not in raw[:64] and b"ID3" not in raw[:64]
    response, body = download(client, recording.pk)
    assert response.status_code == 200
    assert decoded_seconds(body) == pytest.approx(seconds, abs=0.1)
    assert recording.duration_seconds == pytest.approx(seconds, abs=0.1)


def test_a_twilio_call_recorded_through_the_api_is_stored_encrypted(carrier, system_client, local_store):
    # given an on-call person on the phone who listens and presses nothing
    carrier.step_seconds = SLOW_STEP_SECONDS
    person = factories.contact("Kim", 0)
    carrier.set_scenario(person.phone, Scenario.SILENT)
    factories.policy(person, max_attempts=1)
    incident_id = post_alert(system_client)
    attempt = answered_attempt(incident_id)

    # when a supervisor's system starts recording that call by its Twilio call SID, then stops it
    started = system_client.post(
        "/api/v1/recordings/voice/start", {**SESSION, "call_id": attempt.provider_call_id}, format="json"
    )
    assert started.status_code == 201, started.content
    assert started.json()["status"] == "recording"
    recording_id = started.json()["recording_id"]
    stopped = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    again = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")

    # then the carrier recorded it, the second stop is refused, and the worker stores its media
    assert stopped.status_code == 202, stopped.content
    assert again.status_code == 409
    assert "already stopped" in again.json()["error"]["message"]
    recording = wait_until_settled(recording_id)
    sim_recording = carrier._twilio.recordings.get(recording.carrier_recording_id)
    assert sim_recording is not None and sim_recording.call_sid == attempt.provider_call_id
    assert sim_recording.callbacks[-1]["response"] == "204"
    assert (recording.carrier, recording.call_attempt_id, recording.incident_id) == ("twilio", attempt.pk, incident_id)
    assert_stored_encrypted(system_client, recording, sim_recording.duration)


def test_a_vonage_call_recorded_through_the_api_is_stored_encrypted(vonage_carrier, system_client, s3_store):  # noqa: F811
    # given an on-call person on a Vonage call who listens and presses nothing
    vonage_carrier.step_seconds = SLOW_STEP_SECONDS
    person = factories.contact("Kim", 0)
    vonage_carrier.set_scenario(person.phone, Scenario.SILENT)
    factories.policy(person, max_attempts=1)
    incident_id = post_alert(system_client)
    attempt = answered_attempt(incident_id)

    # when recording starts by our attempt id (Vonage: the call moves to an NCCO that records) and stops
    started = system_client.post(
        "/api/v1/recordings/voice/start", {**SESSION, "call_id": str(attempt.pk)}, format="json"
    )
    assert started.status_code == 201, started.content
    recording_id = started.json()["recording_id"]
    stopped = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    again = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")

    # then the recording (Vonage's lasts until the call ends) arrives signed and is stored in S3
    assert stopped.status_code == 202 and again.status_code == 409
    recording = wait_until_settled(recording_id, timeout=60)
    [sim_recording] = vonage_carrier._vonage.recordings.all
    assert recording.carrier_recording_id == sim_recording.uuid
    assert sim_recording.events[-1]["response"] == "204"
    assert_stored_encrypted(system_client, recording, sim_recording.duration)


@pytest.mark.parametrize("carrier_name", ["twilio", "vonage"])
def test_a_policy_that_records_its_calls_gets_each_call_recorded(
    carrier_name,
    both_carriers,  # noqa: F811
    celery_worker,
    settings,
    system_client,
    local_store,
):
    # given a policy that records its calls, whose primary presses 1
    settings.VOICE_PROVIDER = carrier_name
    person = factories.contact("Kim", 0)
    both_carriers.set_scenario(person.phone, Scenario.PRESS_1)
    factories.policy(person, record_calls=True)

    # when an alert phones them
    incident_id = post_alert(system_client)

    # then the call was recorded, and the recording is stored, linked to the incident and the call
    recording = wait_until(
        lambda: Recording.objects.filter(incident_id=incident_id, status=Status.STORED).first(),
        timeout=60,
        what="the call's recording to be stored",
    )
    attempt = CallAttempt.objects.get(incident_id=incident_id)
    assert (recording.call_attempt_id, recording.carrier) == (attempt.pk, carrier_name)
    sims = both_carriers._twilio.recordings.all if carrier_name == "twilio" else both_carriers._vonage.recordings.all
    [sim_recording] = sims
    assert_stored_encrypted(system_client, recording, sim_recording.duration)


def test_a_policy_that_does_not_record_asks_for_no_recording(carrier, system_client):
    person = factories.contact("Kim", 0)
    carrier.set_scenario(person.phone, Scenario.PRESS_1)
    factories.policy(person)

    incident_id = post_alert(system_client)

    wait_until(lambda: CallAttempt.objects.filter(incident_id=incident_id, digits="1").exists(), what="the keypress")
    carrier.wait_until_idle()
    assert "Record" not in carrier.calls[0].params
    assert carrier._twilio.recordings.all == []


def test_a_forged_recording_callback_is_403_and_changes_nothing(client, settings, db):
    # given a live recording waiting for its carrier
    settings.TWILIO_AUTH_TOKEN = "real-token"
    settings.VONAGE_SIGNATURE_SECRET = "vonage-signature-secret-for-the-tests-0123456789"
    settings.PUBLIC_BASE_URL = "http://testserver"
    recording = Recording.objects.create(
        kind="voice",
        session_id="s",
        agent_id="a",
        customer_id="c",
        started_at="2026-01-01T00:00:00Z",
        carrier="twilio",
        callback_token="tok_abcdefghijklmnop",
    )
    forged = {"RecordingSid": "RE1", "RecordingUrl": "http://evil.example/x", "RecordingStatus": "completed"}

    # when someone posts a recording callback without Twilio's signature, or Vonage's
    twilio = client.post("/webhooks/twilio/recording/tok_abcdefghijklmnop", forged, HTTP_X_TWILIO_SIGNATURE="forged")
    vonage = client.post(
        "/webhooks/vonage/recording/tok_abcdefghijklmnop",
        {"recording_url": "http://evil.example/x", "recording_uuid": "u"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer not.a.jwt",
    )

    # then both are refused and the recording is untouched
    assert (twilio.status_code, vonage.status_code) == (403, 403)
    recording.refresh_from_db()
    assert (recording.status, recording.carrier_media_url, recording.carrier_recording_id) == ("recording", "", "")


def test_recording_a_call_that_is_not_in_progress_is_a_409(system_client, db):
    person = factories.contact("Kim", 0)
    factories.policy(person)
    incident_id = post_alert(system_client)
    attempt = CallAttempt.objects.get(incident_id=incident_id)

    response = system_client.post(
        "/api/v1/recordings/voice/start", {**SESSION, "call_id": str(attempt.pk)}, format="json"
    )

    assert response.status_code == 409
    assert "only a call in progress can be recorded" in response.json()["error"]["message"]
