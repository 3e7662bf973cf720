"""Output of the incident as the engine sees it: the record (incidents) plus the calls placed for it.
Here, not in incidents/serializers.py, because the record does not know the engine's CallAttempt.
The seed-compatible layer's shapes are here too, beside its views (orchestrator/seed_apis.py)."""

from __future__ import annotations

from rest_framework import serializers

from incidents.models import IncidentEvent
from incidents.serializers import AlertOut, CleanTextField, ContactOut, IncidentOut
from orchestrator.models import CallAttempt


class AttemptOut(serializers.ModelSerializer):
    contact = ContactOut()

    class Meta:
        model = CallAttempt
        fields = [
            "step",
            "contact",
            "to_number",
            "provider",
            "provider_call_id",
            "status",
            "answered_by",
            "digits",
            "error",
            "created_at",
            "dialed_at",
            "answered_at",
            "ended_at",
        ]


class EventOut(serializers.ModelSerializer):
    # Set by orchestrator.selectors.incident_detail from the event's attempt_id.
    attempt_step = serializers.IntegerField(allow_null=True, default=None)

    class Meta:
        model = IncidentEvent
        fields = ["at", "kind", "actor", "message", "attempt_step"]


class IncidentDetailOut(IncidentOut):
    attempts = AttemptOut(many=True, source="attempt_list")
    timeline = EventOut(many=True)
    alerts = AlertOut(many=True)

    class Meta(IncidentOut.Meta):
        fields = [*IncidentOut.Meta.fields, "attempts", "timeline", "alerts"]


class SeedStartIn(serializers.Serializer):
    incident_summary = CleanTextField(max_length=500)
    tts_text = CleanTextField(max_length=2000, required=False, allow_blank=True, default="")


class SeedCallOut(serializers.Serializer):
    incident_id = serializers.IntegerField()
    call_id = serializers.CharField(allow_null=True)
    to = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)


class SeedAckOut(serializers.Serializer):
    incident_id = serializers.IntegerField()
    status = serializers.CharField()
    acknowledged = serializers.BooleanField()


class EscalateIn(serializers.Serializer):
    from_step = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=10_000,
        help_text="the call the caller saw (current_step); a repeat that no longer matches is a 409, not a skip",
    )
