"""Driving the recordings API the way a contact center's systems do."""

from __future__ import annotations

import time

from rest_framework.test import APIClient

from recordings.models import Recording, Status

SESSION = {"session_id": "session_123", "agent_id": "agent_456", "customer_id": "customer_789"}


def start_voice(client: APIClient, **extra) -> int:
    response = client.post("/api/v1/recordings/voice/start", {**SESSION, **extra}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "recording"
    return response.json()["recording_id"]


def put_audio(client: APIClient, recording_id: int, body: bytes, content_type: str = "application/octet-stream"):
    return client.put(f"/api/v1/recordings/{recording_id}/audio", data=body, content_type=content_type)


def wait_until_settled(recording_id: int, timeout: float = 60.0) -> Recording:
    """Waits for the worker to finish (stored or failed); the wait is not what is tested."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recording = Recording.objects.get(pk=recording_id)
        if recording.status not in (Status.RECORDING, Status.PROCESSING):
            return recording
        time.sleep(0.1)
    raise AssertionError(f"recording {recording_id} still {recording.status} after {timeout} s")


def download(client: APIClient, recording_id: int, **headers):
    response = client.get(f"/api/v1/recordings/{recording_id}/download", **headers)
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return response, body
