"""A compliance officer's decisions: legal hold and retention through the API, audited, enforced by the
purge; and the `recording.stored` event a CRM uses to link a recording to its customer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditAction, AuditEvent, Role
from incidents.models import Incident
from integrations.models import OutboundMessage
from recordings import compliance, services
from recordings.models import Recording, Status
from tests import factories
from tests.accounts.helpers import person
from tests.integrations.conftest import TEST_CREDENTIAL_KEYS, build_integration
from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import download, put_audio, start_voice

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(settings) -> APIClient:
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person("compliance-officer", Role.ADMIN))
    return client


def stored_recording(system_client, tmp_path, **extra) -> Recording:
    recording_id = start_voice(system_client, **extra)
    put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav", 1).read_bytes())
    assert system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop").status_code == 202
    services.process(recording_id)
    return Recording.objects.get(pk=recording_id)


def error(response) -> dict:
    return response.json()["error"]


# --- legal hold -----------------------------------------------------------------------------------


def test_a_recording_on_legal_hold_outlives_its_retention_until_the_hold_is_lifted(
    local_store, system_client, officer, tmp_path
):
    # given a stored recording whose retention date has passed
    recording = stored_recording(system_client, tmp_path)
    Recording.objects.filter(pk=recording.pk).update(retention_until=timezone.now() - timedelta(days=1))

    # when the compliance officer places it on legal hold
    held = officer.patch(f"/api/v1/recordings/{recording.pk}", {"legal_hold": True}, format="json")

    # then the purge leaves it, and it still downloads
    assert held.status_code == 200, held.json()
    assert held.json()["legal_hold"] is True
    assert compliance.purge_expired() == 0
    assert download(system_client, recording.pk)[0].status_code == 200
    # and the decision is in the audit log under the officer's name
    event = AuditEvent.objects.get(action=AuditAction.RECORDING_CHANGED, target=f"recording:{recording.pk}")
    assert event.actor == "user:compliance-officer"
    assert event.data == {"legal_hold": True}

    # when the hold is lifted, the next purge takes it
    lifted = officer.patch(f"/api/v1/recordings/{recording.pk}", {"legal_hold": False}, format="json")
    assert lifted.json()["legal_hold"] is False
    assert compliance.purge_expired() == 1
    assert Recording.objects.get(pk=recording.pk).status == Status.PURGED


def test_changing_the_retention_moves_the_purge_date_from_when_it_was_stored(
    local_store, system_client, officer, settings, tmp_path
):
    settings.RECORDINGS_RETENTION_DAYS_VOICE = 365
    recording = stored_recording(system_client, tmp_path)

    shortened = officer.patch(f"/api/v1/recordings/{recording.pk}", {"retention_days": 30}, format="json")
    back_to_default = officer.patch(f"/api/v1/recordings/{recording.pk}", {"retention_days": None}, format="json")

    assert shortened.status_code == 200, shortened.json()
    assert shortened.json()["retention_days"] == 30
    after_short = Recording.objects.get(pk=recording.pk)
    assert back_to_default.json()["retention_days"] is None
    after_default = Recording.objects.get(pk=recording.pk)
    assert after_short.retention_until is not None and after_default.retention_until is not None
    assert (after_default.retention_until - recording.stored_at).days == 365
    assert AuditEvent.objects.filter(action=AuditAction.RECORDING_CHANGED).count() == 2


def test_a_longer_retention_given_after_the_purge_listed_it_still_spares_it(local_store, system_client, tmp_path):
    # given a recording past its date, whose retention an officer lengthens
    recording = stored_recording(system_client, tmp_path, retention_days=1)
    stored_at = timezone.now() - timedelta(days=3)
    Recording.objects.filter(pk=recording.pk).update(stored_at=stored_at, retention_until=stored_at + timedelta(days=1))
    compliance.change_retention(recording.pk, retention_days=30)

    # then the purge keeps it
    assert compliance.purge_expired() == 0
    assert Recording.objects.get(pk=recording.pk).status == Status.STORED


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "non_field_errors"), ({"retention_days": 0}, "retention_days"), ({"legal_hold": "maybe"}, "legal_hold")],
)
def test_a_bad_change_is_refused_and_names_what_is_wrong(local_store, system_client, officer, tmp_path, body, field):
    recording = stored_recording(system_client, tmp_path)

    response = officer.patch(f"/api/v1/recordings/{recording.pk}", body, format="json")

    assert response.status_code == 400
    assert field in error(response)["fields"]
    assert Recording.objects.get(pk=recording.pk).legal_hold is False


def test_unknown_and_purged_recordings_cannot_be_held(local_store, system_client, officer, tmp_path):
    recording = stored_recording(system_client, tmp_path)
    Recording.objects.filter(pk=recording.pk).update(retention_until=timezone.now() - timedelta(days=1))
    compliance.purge_expired()

    unknown = officer.patch("/api/v1/recordings/999999", {"legal_hold": True}, format="json")
    purged = officer.patch(f"/api/v1/recordings/{recording.pk}", {"legal_hold": True}, format="json")

    assert unknown.status_code == 404
    assert purged.status_code == 409
    assert "was purged" in error(purged)["message"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.SUPERVISOR])
def test_only_an_admin_signed_in_as_a_person_decides_what_is_kept(
    role, local_store, system_client, make_api_key, settings, tmp_path
):
    settings.MFA_REQUIRED_ROLES = []
    recording = stored_recording(system_client, tmp_path)
    below_admin, api_key, anonymous = APIClient(), APIClient(), APIClient()
    below_admin.force_authenticate(person(f"keep-{role.lower()}", role))
    api_key.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('recordings:read', 'recordings:write')}")

    answers = [
        client.patch(f"/api/v1/recordings/{recording.pk}", {"legal_hold": True}, format="json")
        for client in (below_admin, api_key, anonymous)
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 401]
    assert "sign in as a person" in error(answers[1])["message"]
    assert Recording.objects.get(pk=recording.pk).legal_hold is False
    # reading stays as it was: a viewer reads metadata
    assert below_admin.get(f"/api/v1/recordings/{recording.pk}").status_code == 200


# --- the recording.stored event -------------------------------------------------------------------


@pytest.fixture
def crm_webhook(settings):
    settings.INTEGRATIONS_CREDENTIAL_KEYS = TEST_CREDENTIAL_KEYS
    return build_integration("crm-archive", target="http://127.0.0.1:9/hook", events=["recording.stored"])


def test_a_stored_recording_is_announced_once_to_subscribed_integrations(
    local_store, system_client, crm_webhook, tmp_path
):
    # given a recording the CRM should link to its customer
    recording_id = start_voice(system_client)
    put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav", 1).read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")

    # when it is stored, and a redelivered task processes it again
    services.process(recording_id)
    Recording.objects.filter(pk=recording_id).update(status=Status.PROCESSING)
    services.process(recording_id)

    # then one message carries what the CRM needs
    message = OutboundMessage.objects.get(integration=crm_webhook, event="recording.stored")
    payload = message.payload
    assert payload["recording_id"] == recording_id
    assert (payload["session_id"], payload["agent_id"], payload["customer_id"]) == (
        "session_123",
        "agent_456",
        "customer_789",
    )
    assert payload["format"] == "mp3"
    assert payload["duration_seconds"] == pytest.approx(1.0, abs=0.1)
    assert payload["download_url"].endswith(f"/api/v1/recordings/{recording_id}/download")


def test_a_drills_recording_tells_nobody(local_store, system_client, crm_webhook, tmp_path):
    policy = factories.policy(factories.contact("Kim"))
    drill = Incident.objects.create(summary="drill", policy=policy, is_drill=True, dedup_key="drill-rec")
    recording_id = start_voice(system_client)
    Recording.objects.filter(pk=recording_id).update(incident_id=drill.pk)
    put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav", 1).read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")

    services.process(recording_id)

    assert Recording.objects.get(pk=recording_id).status == Status.STORED
    assert not OutboundMessage.objects.filter(event="recording.stored").exists()
