"""The `recording.stored` event: a CRM links the recording to its customer, a webhook archives it.

Published inside the commit that marks the recording stored (integrations record one outbound
message per subscriber and deliver after the commit), with a dedup key so a redelivered processing
task cannot announce one recording twice. A drill's recordings tell nobody, as drills never do.
"""

from __future__ import annotations

from django.conf import settings

from recordings.models import Recording

STORED_EVENT = "recording.stored"


def stored_payload(recording: Recording) -> dict:
    return {
        "recording_id": recording.pk,
        "kind": recording.kind,
        "session_id": recording.session_id,
        "agent_id": recording.agent_id,
        "customer_id": recording.customer_id,
        "channel": recording.channel,
        "incident_id": recording.incident_id,
        "call_attempt_id": recording.call_attempt_id,
        "carrier": recording.carrier,
        "duration_seconds": recording.duration_seconds,
        "format": recording.format,
        "size_bytes": recording.size_bytes,
        "sha256": recording.sha256,
        "started_at": recording.started_at.isoformat() if recording.started_at else None,
        "stored_at": recording.stored_at.isoformat() if recording.stored_at else None,
        "retention_until": recording.retention_until.isoformat() if recording.retention_until else None,
        "url": f"{settings.PUBLIC_BASE_URL}/api/v1/recordings/{recording.pk}",
        "download_url": f"{settings.PUBLIC_BASE_URL}/api/v1/recordings/{recording.pk}/download",
    }


def publish_stored(recording: Recording) -> None:
    from incidents.selectors import is_drill_incident
    from integrations.services import notify

    if recording.incident_id and is_drill_incident(recording.incident_id):
        return
    notify(STORED_EVENT, stored_payload(recording), dedup_key=f"recording:{recording.pk}:stored")
