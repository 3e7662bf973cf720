"""What the CRM provider tests share: the secrets they register (and must never see again), a stored
recording's event, registering an integration, and sending a message through the API. The fixtures
that start the local CRMs (salesforce, hubspot, dynamics) and the API key's client (sender) are
in conftest.py."""

from __future__ import annotations

from integrations import registry

SF_SECRET = "sf-secret-never-shown-7d1c"
HUBSPOT_TOKEN = "pat-na1-never-shown-0c9e"
DV_SECRET = "dv-secret-never-shown-51aa"
RECORDING_STORED = {
    "recording_id": 77,
    "kind": "voice",
    "session_id": "sess-9",
    "agent_id": "agent-3",
    "duration_seconds": 125.4,
    "format": "wav",
    "started_at": "2024-05-01T09:30:00+00:00",
    "url": "https://oncall.example.com/api/v1/recordings/77",
}


def send(client, integration_id: str, message_type: str = "sync", **payload):
    body = {"message_type": message_type, "payload": payload}
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def register(integration_id: str, provider: str, **fields):
    return registry.create_integration(
        {"integration_id": integration_id, "name": integration_id, "type": "crm", "provider": provider, **fields}
    )


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [customer["name"] for customer in response.json()["result"]["customers"]]
