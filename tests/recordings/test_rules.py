"""Bad input gets a 4xx that says what is wrong; retention purges only what it should; each role
gets exactly its rights."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from recordings import compliance, services
from recordings.models import Kind, Recording, Status
from recordings.storage import StorageError, get_storage
from tests.accounts.helpers import person
from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import SESSION, download, put_audio, start_voice

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    return response.json()["error"]


def test_an_unknown_format_is_a_415_naming_the_accepted_ones(local_store, system_client):
    recording_id = start_voice(system_client)

    response = put_audio(system_client, recording_id, b"%PDF-1.7 not audio" * 50, "audio/wav")

    assert response.status_code == 415
    assert error(response)["message"] == "Unsupported audio format; accepted: WAV, MP3, FLAC, AAC."


def test_an_empty_upload_is_a_400(local_store, system_client):
    recording_id = start_voice(system_client)

    response = put_audio(system_client, recording_id, b"")

    assert response.status_code == 400
    assert "The upload is empty" in error(response)["message"]


def test_an_oversized_upload_is_a_413_and_leaves_nothing_stored(local_store, system_client, settings, tmp_path):
    settings.RECORDINGS_MAX_UPLOAD_BYTES = 10_000
    recording_id = start_voice(system_client)

    response = put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav").read_bytes())

    assert response.status_code == 413
    assert "10000-byte limit" in error(response)["message"]
    assert Recording.objects.get(pk=recording_id).storage_key == ""
    assert not [path for path in local_store.rglob("*") if path.is_file()]


def test_a_multipart_upload_is_accepted(local_store, system_client, tmp_path):
    recording_id = start_voice(system_client)
    sample = encoded(tmp_path / "c.flac", "flac")

    with sample.open("rb") as handle:
        response = system_client.put(f"/api/v1/recordings/{recording_id}/audio", {"file": handle}, format="multipart")

    assert response.status_code == 200
    assert response.json()["source_format"] == "flac"


def test_stop_twice_stop_without_audio_and_upload_after_stop_are_409s(local_store, system_client, tmp_path):
    recording_id = start_voice(system_client)
    no_audio = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    assert no_audio.status_code == 409
    assert "has no audio yet" in error(no_audio)["message"]
    put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav").read_bytes())

    first = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    second = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    late_upload = put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav").read_bytes())

    assert first.status_code == 202
    assert second.status_code == 409
    assert "already stopped" in error(second)["message"]
    assert late_upload.status_code == 409


def test_a_call_id_that_names_no_call_is_a_404(system_client):
    response = system_client.post("/api/v1/recordings/voice/start", {**SESSION, "call_id": "CA123"}, format="json")

    assert response.status_code == 404
    assert "No call 'CA123'" in error(response)["message"]
    assert not Recording.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/recordings/voice/999999/stop"),
        ("put", "/api/v1/recordings/999999/audio"),
        ("post", "/api/v1/recordings/chat/999999/close"),
        ("get", "/api/v1/recordings/999999"),
        ("get", "/api/v1/recordings/999999/download"),
    ],
)
def test_unknown_ids_are_404s(system_client, method, path):
    if method == "get":
        response = system_client.get(path)
    else:
        response = getattr(system_client, method)(path, data=b"RIFF", content_type="application/octet-stream")

    assert response.status_code == 404
    assert "999999" in error(response)["message"]


def test_a_download_before_processing_is_a_409(system_client):
    recording_id = start_voice(system_client)

    response, _ = download(system_client, recording_id)

    assert response.status_code == 409
    assert "nothing to download yet" in error(response)["message"]


def test_the_list_filters_and_pages(system_client):
    for customer in ("c-1", "c-1", "c-2"):
        start_voice(system_client, customer_id=customer)
    system_client.post("/api/v1/recordings/chat", {**SESSION, "customer_id": "c-1"}, format="json")

    voice_c1 = system_client.get("/api/v1/recordings", {"customer_id": "c-1", "kind": "voice", "limit": 1})
    bad = system_client.get("/api/v1/recordings", {"kind": "fax", "from": "yesterday"})

    assert voice_c1.json()["count"] == 2
    assert len(voice_c1.json()["results"]) == 1
    assert bad.status_code == 400
    assert set(error(bad)["fields"]) == {"kind", "from"}


# --- retention ------------------------------------------------------------------------------------


def stored(system_client, tmp_path, **fields) -> Recording:
    recording_id = start_voice(system_client)
    put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav", 1).read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    services.process(recording_id)
    Recording.objects.filter(pk=recording_id).update(**fields)
    return Recording.objects.get(pk=recording_id)


def test_retention_purges_expired_objects_keeps_tombstones_and_spares_legal_hold(
    local_store, system_client, tmp_path, django_capture_on_commit_callbacks
):
    past = timezone.now() - timedelta(days=1)
    expired = stored(system_client, tmp_path, retention_until=past)
    held = stored(system_client, tmp_path, retention_until=past, legal_hold=True)
    current = stored(system_client, tmp_path)
    assert current.retention_until > timezone.now() + timedelta(days=364)

    with django_capture_on_commit_callbacks(execute=True):  # the object is deleted once the tombstone commits
        purged = compliance.purge_expired()

    assert purged == 1
    expired_after = Recording.objects.get(pk=expired.pk)
    assert (expired_after.status, expired_after.wrapped_key, expired_after.storage_key) == (Status.PURGED, None, "")
    assert "retention expired (365 days" in expired_after.purge_reason
    assert expired_after.purged_at is not None
    with pytest.raises(StorageError):
        get_storage().size(expired.storage_key)
    assert download(system_client, expired.pk)[0].status_code == 410
    for kept in (held, current):
        assert Recording.objects.get(pk=kept.pk).status == Status.STORED
        assert download(system_client, kept.pk)[0].status_code == 200


def test_a_recording_may_carry_its_own_retention(local_store, system_client, settings, tmp_path):
    settings.RECORDINGS_RETENTION_DAYS_VOICE = 30
    recording_id = start_voice(system_client, retention_days=7)
    put_audio(system_client, recording_id, encoded(tmp_path / "c.wav", "wav", 1).read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    services.process(recording_id)

    recording = Recording.objects.get(pk=recording_id)

    assert recording.retention_until - recording.stored_at == timedelta(days=7)
    assert compliance.days_kept(Recording(kind=Kind.VOICE)) == 30


# --- who may do what ------------------------------------------------------------------------------

ROLES = [Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SUPER_ADMIN]


@pytest.mark.parametrize("role", ROLES)
def test_the_recordings_role_matrix(role, settings, local_store, system_client, tmp_path):
    settings.MFA_REQUIRED_ROLES = []
    recording = stored(system_client, tmp_path)
    client = APIClient()
    client.force_authenticate(person(f"rec-{role.lower()}", role))
    matrix = [
        ("get", "/api/v1/recordings", None, Role.VIEWER),
        ("get", f"/api/v1/recordings/{recording.pk}", None, Role.VIEWER),
        ("get", f"/api/v1/recordings/{recording.pk}/download", None, Role.SUPERVISOR),
        ("post", "/api/v1/recordings/voice/start", SESSION, Role.AGENT),
        ("post", "/api/v1/recordings/chat", SESSION, Role.AGENT),
    ]

    outcomes = {}
    for method, path, body, least in matrix:
        code = getattr(client, method)(path, body, format="json").status_code
        allowed = Role.rank(role) >= Role.rank(least)
        outcomes[f"{method.upper()} {path}"] = (code < 400) if allowed else code == 403

    assert all(outcomes.values()), outcomes


def test_api_keys_need_the_recordings_scopes(make_api_key, local_store, system_client, tmp_path):
    recording = stored(system_client, tmp_path)
    reader, writer = APIClient(), APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('recordings:read', name='qa')}")
    writer.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('recordings:write', name='softphone')}")

    assert download(reader, recording.pk)[0].status_code == 200
    assert reader.post("/api/v1/recordings/voice/start", SESSION, format="json").status_code == 403
    assert download(writer, recording.pk)[0].status_code == 403
    assert "recordings:read" in error(writer.get("/api/v1/recordings"))["message"]
    assert writer.post("/api/v1/recordings/voice/start", SESSION, format="json").status_code == 201
