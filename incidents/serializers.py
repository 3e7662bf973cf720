"""Input serializers validate what monitoring systems send; output serializers shape our answers."""

from __future__ import annotations

import copy
import json
import threading

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.pagination import limit_field, offset_field
from config.text import clean_text
from incidents.models import E164, Alert, Contact, EscalationPolicy, Incident, IncidentState, Language, Severity

SEVERITY_ALIASES = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "error": Severity.HIGH,
    "high": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "minor": Severity.WARNING,
    "info": Severity.INFO,
    "none": Severity.INFO,
}


def severity_from(value: str | None) -> str:
    return SEVERITY_ALIASES.get((value or "critical").strip().lower(), Severity.CRITICAL)


class CleanTextField(serializers.CharField):
    """Human text that is stored and spoken: escape sequences and control characters removed."""

    def to_internal_value(self, data):
        return clean_text(super().to_internal_value(data))


class AnyValueAsTextField(serializers.CharField):
    """A label or annotation value. Alertmanager and Grafana send strings, but a hand-written rule or
    a template may put a number, a boolean, null or an object there: that is read as text, because a
    page must not be refused for its shape. Objects and lists become their JSON text."""

    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)

    def run_validation(self, data=serializers.empty):
        if data is None:
            data = ""
        elif isinstance(data, bool):
            data = "true" if data else "false"
        elif isinstance(data, (dict, list)):
            data = json.dumps(data, ensure_ascii=False, sort_keys=True)
        return super().run_validation(data)


def text_dict(**kwargs) -> serializers.DictField:
    return serializers.DictField(child=AnyValueAsTextField(), required=False, default=dict, **kwargs)


class PolicyReferenceField(serializers.CharField):
    """A policy named by id or by name; checked against the database by the service."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_blank=True, allow_null=True, max_length=100, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


class FieldsBuiltOnce:
    """For the alert serializers, which validate every post of an alert storm: DRF deep-copies every
    declared field for every serializer instance (a sixth of the web's CPU per post in
    bench/alert_storm.py). Plain fields hold nothing per request once built, so each instance gets
    shallow copies of fields built once per class; a nested serializer (the alerts list) is still
    deep-copied, as DRF does, because validating it works through its child instance."""

    def get_fields(self) -> dict[str, serializers.Field]:
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built  # two threads may both build it: either copy is right
        return {
            name: copy.deepcopy(field) if isinstance(field, serializers.BaseSerializer) else copy.copy(field)
            for name, field in built.items()
        }


_per_thread = threading.local()


def validated_or_none(serializer_class: type[serializers.Serializer], data) -> dict | None:
    """`data` validated by `serializer_class`, or None when it is not valid; for the alert fast lane.

    One serializer per class and thread is kept and given each new body, so its fields are copied
    and bound once per thread instead of once per post (a third of the lane's CPU otherwise). This is
    what DRF itself does with the child of a list serializer, which validates item after item; the
    state of one validation (`_validated_data`, `_errors`, `_data`) is dropped before the next."""
    instances = _per_thread.__dict__.setdefault("instances", {})
    serializer = instances.get(serializer_class)
    if serializer is None:
        serializer = instances[serializer_class] = serializer_class(data=data)
    else:
        serializer.initial_data = data
        for state in ("_validated_data", "_errors", "_data"):
            serializer.__dict__.pop(state, None)
    return serializer.validated_data if serializer.is_valid() else None


class GenericAlertIn(FieldsBuiltOnce, serializers.Serializer):
    summary = CleanTextField(max_length=500, required=False, allow_blank=False)
    tts_text = CleanTextField(max_length=2000, required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default=Severity.CRITICAL)
    dedup_key = serializers.CharField(max_length=255, required=False, allow_blank=False, allow_null=True)
    policy = PolicyReferenceField()
    status = serializers.ChoiceField(choices=["firing", "resolved"], required=False, default="firing")

    def validate(self, attrs):
        if attrs["status"] == "resolved" and not attrs.get("dedup_key"):
            raise serializers.ValidationError({"dedup_key": "A resolved alert needs the dedup_key it resolves."})
        if attrs["status"] == "firing" and not attrs.get("summary"):
            raise serializers.ValidationError({"summary": "This field is required."})
        return attrs


class PrometheusAlertIn(FieldsBuiltOnce, serializers.Serializer):
    status = serializers.ChoiceField(choices=["firing", "resolved"], required=False, default="firing")
    labels = text_dict()
    annotations = text_dict()
    fingerprint = serializers.CharField(required=False, allow_blank=True, default="")


class AlertmanagerIn(FieldsBuiltOnce, serializers.Serializer):
    """Alertmanager webhook, version 4: one notification per alert group."""

    version = serializers.CharField(required=False, default="4")
    groupKey = serializers.CharField(max_length=10_000)
    status = serializers.ChoiceField(choices=["firing", "resolved"])
    receiver = serializers.CharField(required=False, allow_blank=True, default="")
    groupLabels = text_dict()
    commonLabels = text_dict()
    commonAnnotations = text_dict()
    alerts = PrometheusAlertIn(many=True, allow_empty=False)

    def validate_version(self, value):
        if value != "4":
            raise serializers.ValidationError(f"Only Alertmanager webhook version 4 is supported, got {value!r}.")
        return value


class GrafanaIn(FieldsBuiltOnce, serializers.Serializer):
    """Grafana alerting webhook, version 1."""

    version = serializers.CharField(required=False, default="1")
    status = serializers.ChoiceField(choices=["firing", "resolved"], required=False)
    state = serializers.CharField(required=False, allow_blank=True, default="")
    title = AnyValueAsTextField(required=False, default="")
    message = AnyValueAsTextField(required=False, default="")
    groupKey = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    commonLabels = text_dict()
    commonAnnotations = text_dict()
    alerts = PrometheusAlertIn(many=True, required=False, default=list)

    def validate(self, attrs):
        if not attrs.get("groupKey") and not any(alert.get("fingerprint") for alert in attrs["alerts"]):
            raise serializers.ValidationError({"groupKey": "Neither groupKey nor an alert fingerprint was sent."})
        if "status" not in attrs and not attrs.get("state"):
            raise serializers.ValidationError({"state": "Neither status nor state was sent."})
        return attrs


class IngestOut(serializers.Serializer):
    incident_id = serializers.IntegerField(allow_null=True)
    state = serializers.CharField(allow_null=True)
    deduplicated = serializers.BooleanField()
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="accepted, but e.g. the named policy is unknown so the default called"
    )
    resolved = serializers.BooleanField(required=False)
    retriggered = serializers.BooleanField(required=False, help_text="a new round of calls started")


class ContactIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    phone = serializers.CharField(max_length=16, validators=[E164])
    language = serializers.ChoiceField(choices=Language.choices, default=Language.KOREAN)
    preferred_provider = serializers.ChoiceField(choices=["", "twilio", "vonage"], required=False, default="")
    active = serializers.BooleanField(default=True)


class ContactDetailOut(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "language", "preferred_provider", "active", "created_at", "updated_at"]


class PolicyIn(serializers.ModelSerializer):
    """A policy's settings and its call order: `contacts` is a list of contact ids, first called first."""

    contacts = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        allow_empty=False,
        max_length=50,
        help_text="contact ids in call order (the first is the primary); each at most once",
    )

    class Meta:
        model = EscalationPolicy
        fields = ["name", "contacts", "max_attempts", "ring_timeout_seconds", "pause_seconds", "message_repeats"]
        fields += ["record_calls", "is_default"]
        # Uniqueness (the name, one default) is the service's: it unmarks the old default first.
        extra_kwargs = {"name": {"validators": []}, "is_default": {"validators": []}}
        validators = []

    def validate_contacts(self, value: list[int]) -> list[int]:
        twice = sorted({contact_id for contact_id in value if value.count(contact_id) > 1})
        if twice:
            listed = ", ".join(str(contact_id) for contact_id in twice)
            raise serializers.ValidationError(
                f"Contact {listed} is listed more than once; list each contact once (calls go round the list)."
            )
        return value


class PolicyMemberOut(serializers.Serializer):
    position = serializers.IntegerField(help_text="1 is called first")
    id = serializers.IntegerField(source="contact.id")
    name = serializers.CharField(source="contact.name")
    phone = serializers.CharField(source="contact.phone")
    active = serializers.BooleanField(source="contact.active")


class PolicyOut(serializers.ModelSerializer):
    contacts = serializers.SerializerMethodField()

    class Meta:
        model = EscalationPolicy
        fields = ["id", "name", "contacts", "max_attempts", "ring_timeout_seconds", "pause_seconds"]
        fields += ["message_repeats", "record_calls", "is_default", "created_at", "updated_at"]

    @extend_schema_field(PolicyMemberOut(many=True))
    def get_contacts(self, policy: EscalationPolicy) -> list[dict]:
        members = policy.members.all()
        rows = [{"position": index, "contact": member.contact} for index, member in enumerate(members, start=1)]
        return PolicyMemberOut(rows, many=True).data


class ContactOut(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "language"]


class AlertOut(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "source", "status", "received_at", "received_by"]


class IncidentOut(serializers.ModelSerializer):
    policy = serializers.CharField(source="policy.name")

    class Meta:
        model = Incident
        fields = [
            "id",
            "summary",
            "tts_text",
            "severity",
            "source",
            "dedup_key",
            "policy",
            "state",
            "is_drill",
            "exhausted",
            "exhausted_reason",
            "current_step",
            "next_action_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "created_at",
            "updated_at",
        ]


class IncidentFilterIn(serializers.Serializer):
    state = serializers.ChoiceField(choices=IncidentState.choices, required=False)
    limit = limit_field(default=50, maximum=200)
    offset = offset_field()
