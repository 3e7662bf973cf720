"""AWS KMS wrapping the data keys (RECORDINGS_KMS_KEY_ID), against moto's KMS on loopback: new
recordings are wrapped by KMS, recordings wrapped by the ring stay readable and move under KMS with
the re-wrap command, a tampered wrapped key fails clearly, and an unreachable KMS is a 503, not a
"corrupted recording"."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from recordings import kms, services
from recordings.models import Recording
from tests.recordings.audio_samples import encoded
from tests.recordings.conftest import free_port
from tests.recordings.helpers import download, put_audio, start_voice

pytestmark = pytest.mark.django_db


@pytest.fixture
def kms_key(settings, moto_server, monkeypatch):
    """A fresh symmetric key on moto's KMS; returns its ARN. KMS is not yet configured."""
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    settings.RECORDINGS_KMS_ENDPOINT_URL = moto_server
    settings.RECORDINGS_KMS_REGION = "us-east-1"
    kms._resolved.cache_clear()
    client = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_server)
    key = client.create_key(Description="oncall recordings test")["KeyMetadata"]
    client.create_alias(AliasName=f"alias/recordings-{key['KeyId'][:8]}", TargetKeyId=key["KeyId"])
    return {"arn": key["Arn"], "id": key["KeyId"], "alias": f"alias/recordings-{key['KeyId'][:8]}"}


def stored(system_client, tmp_path) -> Recording:
    recording_id = start_voice(system_client)
    assert put_audio(system_client, recording_id, encoded(tmp_path / "k.wav", "wav", 1).read_bytes()).status_code == 200
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    services.process(recording_id)
    return Recording.objects.get(pk=recording_id)


def test_with_a_kms_key_new_recordings_are_wrapped_by_kms_and_download(
    local_store, system_client, settings, kms_key, tmp_path
):
    # given KMS configured by its alias
    settings.RECORDINGS_KMS_KEY_ID = kms_key["alias"]

    # when a recording is stored
    recording = stored(system_client, tmp_path)

    # then its data key is KMS's, and it downloads as the audio it was
    assert recording.key_id == f"kms:{kms_key['id']}"
    response, body = download(system_client, recording.pk)
    assert response.status_code == 200
    assert len(body) == recording.size_bytes


def test_ring_recordings_stay_readable_and_rewrap_moves_them_under_kms(
    local_store, system_client, settings, kms_key, tmp_path
):
    # given a recording wrapped by the ring, before KMS was configured
    before = stored(system_client, tmp_path)
    assert not before.key_id.startswith("kms:")
    _, original = download(system_client, before.pk)

    # when KMS is configured, it still downloads; and the re-wrap command moves it under KMS
    settings.RECORDINGS_KMS_KEY_ID = kms_key["arn"]
    assert download(system_client, before.pk)[0].status_code == 200
    call_command("rewrap_recording_keys")

    # then it is wrapped by KMS, the object is untouched, and it downloads the same bytes
    after = Recording.objects.get(pk=before.pk)
    assert after.key_id == f"kms:{kms_key['id']}"
    assert after.storage_key == before.storage_key
    assert download(system_client, before.pk)[1] == original

    # and turning KMS off again, the command moves it back to the ring
    settings.RECORDINGS_KMS_KEY_ID = ""
    call_command("rewrap_recording_keys")
    assert not Recording.objects.get(pk=before.pk).key_id.startswith("kms:")
    assert download(system_client, before.pk)[1] == original


def test_a_tampered_kms_wrapped_key_fails_clearly(local_store, system_client, settings, kms_key, tmp_path):
    settings.RECORDINGS_KMS_KEY_ID = kms_key["id"]
    recording = stored(system_client, tmp_path)
    blob = bytearray(recording.wrapped_key)
    blob[-1] ^= 0x01
    Recording.objects.filter(pk=recording.pk).update(wrapped_key=bytes(blob))

    response = download(system_client, recording.pk)[0]

    assert response.status_code == 502
    assert "does not open" in response.json()["error"]["message"]


def test_an_unreachable_kms_is_a_503_to_try_again_not_a_corrupted_recording(
    local_store, system_client, settings, kms_key, tmp_path
):
    settings.RECORDINGS_KMS_KEY_ID = kms_key["id"]
    recording = stored(system_client, tmp_path)
    settings.RECORDINGS_KMS_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.RECORDINGS_KMS_CONNECT_TIMEOUT = 0.5

    read = download(system_client, recording.pk)[0]
    new_id = start_voice(system_client)
    upload = put_audio(system_client, new_id, encoded(tmp_path / "n.wav", "wav", 1).read_bytes())

    assert read.status_code == 503
    assert "Try again" in read.json()["error"]["message"]
    assert upload.status_code == 503
    assert "not stored" in upload.json()["error"]["message"]
    assert Recording.objects.get(pk=new_id).storage_key == ""
